//! Pure types and rules of the directory: addresses, domains, entries,
//! organisations, certificates as the directory sees them, callers and the
//! change sequence. Nothing in here performs I/O or knows a protocol; every
//! other module speaks in these types.

mod address;
mod bundle;
mod caller;
mod certificate;
mod change;
mod clock;
mod criteria;
mod entry;
mod input;
mod organisation;
mod policy;
mod tree;
mod user;

pub use address::{Address, DirectoryAddress, DomainName};
pub use bundle::{
    BundleDefinition, BundleName, BundleOrigin, BundleSource, MAX_BUNDLE_NAME, MIN_BUNDLE_REFRESH,
    RefreshCode, RefreshStatus, TrustBundle,
};
pub use caller::{Caller, VisibilityScope};
pub use certificate::{
    Assurance, Binding, Certificate, EntryCertificate, Fingerprint, KeyUsage, TrustAnchor,
    TrustStatus, TrustVerdict,
};
pub use change::{Change, ChangeKind, ChangeSeq};
pub use clock::{Clock, FixedClock, SystemClock};
pub use criteria::{Criteria, Field, Substrings};
pub use entry::{
    Entry, EntryKind, EntryNames, EntryRecord, Identifier, NodeId, Visibility, npi_is_valid,
};
pub use input::{EntryInput, OrganisationInput, parse_identifier, pem_certificate};
pub use organisation::{OrgId, Organisation};
pub use policy::{
    EventFacts, Held, Listing, PolicyHead, PolicyId, PolicyKind, PolicyOp, PolicyRejection,
    Subject, Verdict, base32_label, judge,
};
pub use tree::{Ava, DirectoryTree, Dn, TreeNode, escape_dn_value};
pub use user::{User, UserName, check_password};

/// Why a value was refused at the edge. The message is safe to show a client:
/// it names the rule that was broken, never internal state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A mail address that is not an RFC 5321 `local@domain`.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: &'static str },
    /// A DNS name that is not a hostname (LDH labels, ≤ 63 octets, ≤ 253 in all).
    #[error("invalid domain {input:?}: {reason}")]
    InvalidDomain { input: String, reason: &'static str },
    /// Any other field that breaks a rule of the model.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
}
