//! Who is asking, and what that lets them see and change.

use super::{Entry, OrgId, Visibility};

/// An authenticated (or anonymous) caller, whatever front end it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials: public entries only, no writes.
    Anonymous,
    /// Holds a node-admin token: sees and changes everything on this node.
    NodeAdmin { subject: String },
    /// Administers one organisation: sees its internal entries, writes its entries.
    OrgAdmin { subject: String, org: OrgId },
    /// A member of one organisation (e.g. an LDAP bind): sees its internal entries, no writes.
    OrgMember { subject: String, org: OrgId },
}

/// Which entries a caller's searches may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisibilityScope {
    PublicOnly,
    /// Public entries plus the internal entries of one organisation.
    PublicAnd(OrgId),
    All,
}

impl VisibilityScope {
    /// Whether an entry with `visibility` in `organisation` is in scope.
    pub fn allows(&self, visibility: Visibility, organisation: Option<&OrgId>) -> bool {
        match (visibility, self) {
            (Visibility::Public, _) | (_, VisibilityScope::All) => true,
            (Visibility::Internal, VisibilityScope::PublicAnd(org)) => organisation == Some(org),
            (Visibility::Internal, VisibilityScope::PublicOnly) => false,
        }
    }
}

impl Caller {
    pub fn scope(&self) -> VisibilityScope {
        match self {
            Caller::Anonymous => VisibilityScope::PublicOnly,
            Caller::NodeAdmin { .. } => VisibilityScope::All,
            Caller::OrgAdmin { org, .. } | Caller::OrgMember { org, .. } => {
                VisibilityScope::PublicAnd(org.clone())
            }
        }
    }

    pub fn can_see(&self, entry: &Entry) -> bool {
        self.scope()
            .allows(entry.visibility, entry.organisation.as_ref())
    }

    /// May the caller create, change or remove entries of `org` (None = no organisation)?
    pub fn can_write_entries_of(&self, org: Option<&OrgId>) -> bool {
        match self {
            Caller::NodeAdmin { .. } => true,
            Caller::OrgAdmin { org: own, .. } => org == Some(own),
            Caller::Anonymous | Caller::OrgMember { .. } => false,
        }
    }

    /// Node-wide administration: organisations, trust anchors, users.
    pub fn is_node_admin(&self) -> bool {
        matches!(self, Caller::NodeAdmin { .. })
    }

    /// A name for logs and audit.
    pub fn subject(&self) -> &str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::NodeAdmin { subject }
            | Caller::OrgAdmin { subject, .. }
            | Caller::OrgMember { subject, .. } => subject,
        }
    }
}
