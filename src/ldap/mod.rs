//! The LDAP front end: LDAPv3 for mail clients' address books,
//! `ldapsearch` and Direct certificate discovery (PROTOCOLS.md §2–3).
//!
//! Read-only: search (with paged results and limits), anonymous and simple
//! bind of organisation users, StartTLS, LDAPS and "Who am I?"; writes
//! answer unwillingToPerform (the directory is written through REST).
//!
//! | file | what |
//! |---|---|
//! | `transport` | listeners, TLS, framing and size limit, idle timeout, the connection loop |
//! | `ber` | the direct encoder of search result entries (everything else: ldap3_proto) |
//! | `request` | one message in, answers out: decoding, critical controls, dispatch |
//! | `bind`, `search`, `extended` | the operations |
//! | `rootdse`, `entry`, `filter`, `paging` | the root DSE, how nodes look, filters → core criteria, paged-results cookies |
//! | `error` | failures, placed in the one error table |
//!
//! The tree (`o=<org>,<base>`, `mail=<address>,o=<org>,<base>`) is the
//! domain's [`DirectoryTree`]; every answer comes from one core call.

mod ber;
mod bind;
mod entry;
mod error;
mod extended;
mod filter;
mod paging;
mod request;
mod rootdse;
mod search;
mod transport;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ldap3_proto::proto::LdapMsg;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::LdapConfig;
use crate::core::Directory;
use crate::domain::{DirectoryTree, Dn};

pub use error::{LdapError, StartError};
pub use request::{Reply, Session, Then};
pub use transport::{ByteStream, Frames, load_tls, serve_stream};

/// Limits applied to every connection and search.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most entries per search (per page when paging).
    pub size_limit: usize,
    /// Longest a search may run.
    pub time_limit: Duration,
    /// Largest request message.
    pub max_message_bytes: usize,
    /// Longest a connection may stay idle.
    pub idle: Duration,
}

/// What every LDAP session shares: the directory, the tree, limits, TLS.
pub struct Ldap {
    directory: Directory,
    tree: DirectoryTree,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    cookies: paging::Cookies,
    failed_binds: bind::FailedBinds,
    /// The base and organisation nodes, rebuilt when the organisations change.
    tree_nodes: search::TreeNodes,
}

impl Ldap {
    /// The shared state for `config`, with TLS when `tls` is given.
    pub fn new(
        directory: Directory,
        config: &LdapConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Arc<Ldap>, StartError> {
        Dn::parse(&config.base_dn).map_err(|_| StartError::BaseDn(config.base_dn.clone()))?;
        Ok(Arc::new(Ldap {
            directory,
            tree: DirectoryTree {
                base_dn: config.base_dn.clone(),
            },
            limits: Limits {
                size_limit: config.size_limit.max(1),
                time_limit: Duration::from_secs(config.time_limit_seconds.max(1)),
                max_message_bytes: config.max_message_bytes,
                idle: Duration::from_secs(config.idle_timeout_seconds.max(1)),
            },
            tls: tls.map(TlsAcceptor::from),
            cookies: paging::Cookies::new(config.page_cookie_seconds),
            failed_binds: bind::FailedBinds::new(
                config.failed_binds_per_minute,
                config.failed_binds_burst,
            ),
            tree_nodes: search::TreeNodes::default(),
        }))
    }
}

/// The running LDAP listeners.
pub struct LdapServer {
    /// Where plain LDAP (and StartTLS) listens.
    pub ldap_addr: SocketAddr,
    /// Where LDAPS listens, when TLS is configured.
    pub ldaps_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LdapServer {
    /// Stops accepting and ends open connections.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Binds the listeners of `config` (TLS files relative to `data_dir`) and
/// starts serving.
pub async fn start(
    directory: Directory,
    config: &LdapConfig,
    data_dir: &Path,
) -> Result<LdapServer, StartError> {
    let tls = match config.tls_files(data_dir) {
        Some((cert, key)) => Some(load_tls(&cert, &key)?),
        None => None,
    };
    let ldap = Ldap::new(directory, config, tls.clone())?;
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let (listener, ldap_addr) = transport::listen(config.listen).await?;
    let mut tasks = vec![tokio::spawn(transport::accept_loop(
        ldap.clone(),
        listener,
        None,
        connections.clone(),
        stopped.clone(),
    ))];
    let mut ldaps_addr = None;
    if let Some(tls) = tls {
        let (listener, addr) = transport::listen(config.ldaps_listen).await?;
        ldaps_addr = Some(addr);
        tasks.push(tokio::spawn(transport::accept_loop(
            ldap,
            listener,
            Some(TlsAcceptor::from(tls)),
            connections,
            stopped,
        )));
    }
    Ok(LdapServer {
        ldap_addr,
        ldaps_addr,
        stop,
        tasks,
    })
}

/// The request path over raw bytes, without a socket: frames `input`,
/// answers each message in one anonymous session (from 127.0.0.1) and
/// returns every answer, stopping where the connection would close. What
/// the fuzz target and the corpus test drive.
pub async fn answer_bytes(ldap: &Arc<Ldap>, input: &[u8]) -> Vec<LdapMsg> {
    let mut session = Session::new(ldap.clone(), IpAddr::V4(Ipv4Addr::LOCALHOST), false);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    for frame in transport::frames_of(&mut buf, ldap.limits.max_message_bytes) {
        let Ok(frame) = frame else {
            out.push(request::notice_of_disconnection(
                ldap3_proto::proto::LdapResultCode::ProtocolError,
                "unreadable message",
            ));
            break;
        };
        let reply = session.respond(&frame).await;
        if let Some(entries) = reply.entries {
            out.extend(ber::decode_all(entries.bytes));
        }
        out.extend(reply.messages);
        if reply.then != Then::Continue {
            break;
        }
    }
    out
}
