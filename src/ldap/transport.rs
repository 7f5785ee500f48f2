//! Transport: listeners (plain LDAP with StartTLS, and LDAPS), TLS with
//! rustls (ring), framing of BER messages with a size limit enforced from
//! the length header before anything is buffered, idle timeouts, a cap on
//! connections, and the per-connection loop. The loop runs over any byte
//! stream (a boxed `AsyncRead + AsyncWrite`), so the StartTLS upgrade swaps
//! the stream underneath it and tests can drive it in memory.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use ldap3_lber::structure::StructureTag;
use ldap3_proto::proto::{LdapMsg, LdapResultCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{Decoder, Encoder, Framed};
use tracing::{debug, warn};

use super::Ldap;
use super::error::StartError;
use super::request::{Session, Then, notice_of_disconnection};

/// Any byte stream a session can run over: TCP, TLS over TCP, or memory.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length header announces more than the configured maximum.
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not a definite-length BER SEQUENCE.
    #[error("not an LDAP message")]
    Malformed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Splits the byte stream into whole BER elements (LDAPMessages) and
/// encodes answers. Only the header is parsed here; the element's content
/// is decoded by the request path.
pub struct Frames {
    max: usize,
}

impl Frames {
    /// Frames of at most `max` bytes.
    pub fn new(max: usize) -> Frames {
        Frames { max }
    }
}

impl Decoder for Frames {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        // LDAPMessage ::= SEQUENCE: universal, constructed, tag 16.
        if buf[0] != 0x30 {
            return Err(FrameError::Malformed);
        }
        let (header, length) = match buf[1] {
            n if n < 0x80 => (2, usize::from(n)),
            // Indefinite lengths are not allowed in LDAP (RFC 4511 §5.1).
            0x80 => return Err(FrameError::Malformed),
            n => {
                let count = usize::from(n & 0x7f);
                if count > 4 {
                    return Err(FrameError::TooLarge(usize::MAX));
                }
                if buf.len() < 2 + count {
                    return Ok(None);
                }
                let length = buf[2..2 + count]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (2 + count, length)
            }
        };
        let total = header.saturating_add(length);
        if total > self.max {
            return Err(FrameError::TooLarge(total));
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        Ok(Some(buf.split_to(total)))
    }
}

impl Encoder<LdapMsg> for Frames {
    type Error = FrameError;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> Result<(), FrameError> {
        let tag: StructureTag = msg.into();
        ldap3_lber::write::encode_into(buf, tag)?;
        Ok(())
    }
}

/// The connection's framing. A reply is written as one piece (one flush
/// after all its messages), not in pieces of the codec's default 8 KiB.
fn framed(stream: Box<dyn ByteStream>, max: usize) -> Framed<Box<dyn ByteStream>, Frames> {
    let mut framed = Framed::new(stream, Frames::new(max));
    framed.set_backpressure_boundary(REPLY_BUFFER);
    framed
}

/// Bytes of a reply buffered before they are written out.
const REPLY_BUFFER: usize = 1 << 20;

/// Runs one connection until the client leaves, idles out or breaks the
/// protocol. `secure` when the stream is TLS already (LDAPS).
pub async fn serve_stream(
    ldap: Arc<Ldap>,
    stream: Box<dyn ByteStream>,
    peer: IpAddr,
    secure: bool,
) {
    let mut session = Session::new(ldap.clone(), peer, secure);
    let mut framed = framed(stream, ldap.limits.max_message_bytes);
    loop {
        let next = tokio::time::timeout(ldap.limits.idle, framed.next()).await;
        let frame = match next {
            Err(_) => {
                debug!(%peer, "LDAP connection idle; closing");
                let _ = framed
                    .send(notice_of_disconnection(
                        LdapResultCode::Unavailable,
                        "idle for too long",
                    ))
                    .await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(FrameError::Io(e)))) => {
                debug!(%peer, error = %e, "LDAP connection failed");
                return;
            }
            Ok(Some(Err(e))) => {
                debug!(%peer, error = %e, "LDAP client sent an unreadable message");
                let _ = framed
                    .send(notice_of_disconnection(
                        LdapResultCode::ProtocolError,
                        &e.to_string(),
                    ))
                    .await;
                return;
            }
        };
        let reply = session.respond(&frame).await;
        if let Some(entries) = reply.entries {
            // The write buffer is empty after the last reply's flush: the
            // encoded entries become it rather than being copied in.
            let buffer = framed.write_buffer_mut();
            if buffer.is_empty() {
                *buffer = entries.bytes;
            } else {
                buffer.extend_from_slice(&entries.bytes);
            }
        }
        for message in reply.messages {
            if framed.feed(message).await.is_err() {
                return;
            }
        }
        if framed.flush().await.is_err() {
            return;
        }
        match reply.then {
            Then::Continue => {}
            Then::Close => return,
            Then::StartTls => {
                let Some(acceptor) = ldap.tls.clone() else {
                    return;
                };
                // Anything the client sent before the handshake would be
                // read unprotected: RFC 4513 §3.1.1 makes that an error.
                if !framed.read_buffer().is_empty() {
                    return;
                }
                let plain = framed.into_inner();
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(plain)).await {
                        Ok(Ok(tls)) => tls,
                        _ => {
                            debug!(%peer, "StartTLS handshake failed");
                            return;
                        }
                    };
                session.tls_started();
                framed = self::framed(
                    Box::new(tls) as Box<dyn ByteStream>,
                    ldap.limits.max_message_bytes,
                );
            }
        }
    }
}

/// Reads a PEM certificate chain and private key into a rustls server
/// configuration using the ring provider.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let files = |path: &Path, reason: String| StartError::TlsFiles {
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| files(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| files(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(files(cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| files(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::TlsConfig(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError::TlsConfig(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Accepts connections on `listener` until `stop` turns true.
pub(super) async fn accept_loop(
    ldap: Arc<Ldap>,
    listener: TcpListener,
    tls_from_start: Option<TlsAcceptor>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                warn!(error = %e, "LDAP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            debug!(%peer, "too many LDAP connections; refusing one");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let ldap = ldap.clone();
        let tls = tls_from_start.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let serve = async {
                match tls {
                    None => serve_stream(ldap, Box::new(tcp), peer.ip(), false).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                serve_stream(ldap, Box::new(stream), peer.ip(), true).await
                            }
                            _ => debug!(%peer, "LDAPS handshake failed"),
                        }
                    }
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

/// Binds `addr`; returns the listener and the address it got.
pub(super) async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Drains `buf` of whole frames, for the in-memory request path.
pub(super) fn frames_of(buf: &mut BytesMut, max: usize) -> Vec<Result<BytesMut, FrameError>> {
    let mut frames = Frames::new(max);
    let mut out = Vec::new();
    loop {
        match frames.decode(buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => return out,
            Err(e) => {
                buf.advance(buf.len());
                out.push(Err(e));
                return out;
            }
        }
    }
}
