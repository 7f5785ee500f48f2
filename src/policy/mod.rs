//! Fair-play policies: owners sign list and de-list events for
//! certificates, addresses or domains; every node verifies them itself,
//! whoever relayed them. The rules of a policy's chain are pure domain
//! rules (`domain::judge`); this module holds what needs keys and bytes.
//!
//! | file | what |
//! |---|---|
//! | `event.rs` | the signed event: canonical encoding, signing, decoding ([`SignedEvent`]) |
//! | `webhook.rs` | the node's signature on webhook deliveries |
//!
//! The byte layout is specified in `docs/policies.md`.

pub mod event;
#[cfg(test)]
pub(crate) mod testkit;
pub mod webhook;

pub use event::{EVENT_MAGIC, EventError, MAX_EVENT_BYTES, PolicyEvent, SignedEvent};
pub use webhook::{sign_delivery, verify_delivery};
