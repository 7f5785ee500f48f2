//! The transport: UDP and TCP listeners, framing, timeouts and limits.
//! What a message means is [`Handler::handle`]'s business.
//!
//! * UDP: `udp_threads` plain threads share one socket and answer each
//!   datagram as it comes (blocking `recv_from` / `send_to`: no task or
//!   channel per query, which is what CPU per answer is made of).
//! * TCP (RFC 7766): a task per connection, at most `tcp_max_connections`
//!   at once (more are closed at once). Each message has a 2-octet length;
//!   a connection idle, or stuck mid-message, for `tcp_idle_timeout_seconds`
//!   is closed, as is one whose frame is shorter than a DNS header.
//!   Pipelined queries are answered in order, and answers to queries already
//!   read are written together.
//! * A bug that panics while answering loses that one message, never the
//!   listener: other clients are still answered.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use super::handler::{Action, Handler, Transport};
use crate::core::NameState;

/// The longest a UDP answer waits for certificates read from the database.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often UDP threads look at the stop flag.
const UDP_WAKE: Duration = Duration::from_millis(200);

/// Bound listeners; dropping them does not stop them, [`Listeners::stop`] does.
pub struct Listeners {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Limits of the transport.
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    pub udp_threads: usize,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
}

impl Listeners {
    /// Binds UDP and TCP on `addr` (with port 0, TCP takes the port UDP got
    /// when it is free) and starts serving.
    pub fn bind(
        addr: SocketAddr,
        handler: Arc<Handler>,
        limits: TransportLimits,
    ) -> io::Result<Listeners> {
        let udp = UdpSocket::bind(addr)?;
        let udp_addr = udp.local_addr()?;
        let tcp = match std::net::TcpListener::bind(udp_addr) {
            Ok(l) => l,
            Err(_) if addr.port() == 0 => std::net::TcpListener::bind(addr)?,
            Err(e) => return Err(e),
        };
        let tcp_addr = tcp.local_addr()?;
        tcp.set_nonblocking(true)?;
        let tcp = TcpListener::from_std(tcp)?;
        udp.set_read_timeout(Some(UDP_WAKE))?;

        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..limits.udp_threads.max(1) {
            let socket = udp.try_clone()?;
            let handler = handler.clone();
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || serve_udp(&socket, &handler, &stop))?,
            );
        }
        let (shutdown, rx) = watch::channel(false);
        tokio::spawn(serve_tcp(tcp, handler, limits, rx));
        Ok(Listeners {
            udp_addr,
            tcp_addr,
            stop,
            shutdown,
            threads,
        })
    }

    /// Stops accepting; returns when the UDP threads have ended.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn serve_udp(socket: &UdpSocket, handler: &Handler, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors of earlier sends show up here on some systems.
                debug!(error = %e, "udp receive");
                continue;
            }
        };
        let Some(msg) = buf.get(..len) else { continue };
        let action = std::panic::catch_unwind(AssertUnwindSafe(|| {
            match handler.handle(msg, src.ip(), Transport::Udp, &mut out) {
                // This thread may wait: the read runs on the runtime.
                Action::Resolve(name) => {
                    let certs = match handler
                        .publication()
                        .resolve_blocking(name.as_bytes(), RESOLVE_TIMEOUT)
                    {
                        Some(NameState::Certificates(certs)) => Some(certs),
                        _ => None,
                    };
                    handler.handle_resolved(msg, src.ip(), Transport::Udp, &mut out, certs.as_ref())
                }
                other => other,
            }
        }));
        match action {
            Ok(Action::Reply) => {
                if let Err(e) = socket.send_to(&out, src) {
                    debug!(error = %e, %src, "udp send");
                }
            }
            Ok(Action::Drop | Action::Transfer(_) | Action::Resolve(_)) => {}
            Err(_) => warn!(%src, "answering a UDP message panicked; dropped it"),
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    handler: Arc<Handler>,
    limits: TransportLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.tcp_max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, src) = match accepted {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "tcp accept");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%src, "too many DNS TCP connections; closing one");
            continue;
        };
        let handler = handler.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = serve_connection(stream, src, &handler, limits.tcp_idle_timeout) => {
                    if let Err(e) = r {
                        debug!(%src, error = %e, "dns tcp connection ended");
                    }
                }
                _ = shutdown.changed() => {}
            }
            drop(permit);
        });
    }
}

/// Whether `buffered` holds a whole length-prefixed message.
fn has_whole_frame(buffered: &[u8]) -> bool {
    match buffered {
        [a, b, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*a, *b])),
        _ => false,
    }
}

async fn serve_connection(
    stream: TcpStream,
    src: SocketAddr,
    handler: &Handler,
    idle: Duration,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut msg = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "idle");
    loop {
        let len = match tokio::time::timeout(idle, rd.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        };
        if len < 12 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame shorter than a header",
            ));
        }
        let frame = &mut msg[..len];
        tokio::time::timeout(idle, rd.read_exact(frame))
            .await
            .map_err(|_| timed_out())??;
        let mut action = std::panic::catch_unwind(AssertUnwindSafe(|| {
            handler.handle(frame, src.ip(), Transport::Tcp, &mut out)
        }));
        if let Ok(Action::Resolve(name)) = &action {
            let certs = match handler.publication().resolve(name.as_bytes()).await {
                Ok(NameState::Certificates(certs)) => Some(certs),
                Ok(_) => None,
                Err(e) => {
                    warn!(error = %e, "reading published certificates failed");
                    None
                }
            };
            action = std::panic::catch_unwind(AssertUnwindSafe(|| {
                handler.handle_resolved(frame, src.ip(), Transport::Tcp, &mut out, certs.as_ref())
            }));
        }
        match action {
            Ok(Action::Reply) => write_frame(&mut wr, &out, idle).await?,
            Ok(Action::Drop) => {}
            Ok(Action::Resolve(_)) => {}
            Ok(Action::Transfer(mut transfer)) => {
                if let Err(e) = transfer.resolve(handler.publication()).await {
                    warn!(%src, error = %e, "reading the zone's certificates failed; closing the connection");
                    return Ok(());
                }
                while transfer.next_message(&mut out) {
                    write_frame(&mut wr, &out, idle).await?;
                }
            }
            Err(_) => {
                warn!(%src, "answering a TCP message panicked; closing the connection");
                return Ok(());
            }
        }
        if !has_whole_frame(rd.buffer()) {
            tokio::time::timeout(idle, wr.flush())
                .await
                .map_err(|_| timed_out())??;
        }
    }
}

async fn write_frame<W: AsyncWriteExt + Unpin>(
    wr: &mut W,
    out: &[u8],
    idle: Duration,
) -> io::Result<()> {
    let Ok(len) = u16::try_from(out.len()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "response over 65535 octets",
        ));
    };
    let write = async {
        wr.write_all(&len.to_be_bytes()).await?;
        wr.write_all(out).await
    };
    tokio::time::timeout(idle, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames() {
        assert!(!has_whole_frame(&[]));
        assert!(!has_whole_frame(&[0]));
        assert!(has_whole_frame(&[0, 0]));
        assert!(!has_whole_frame(&[0, 2, 1]));
        assert!(has_whole_frame(&[0, 2, 1, 2, 3]));
    }
}
