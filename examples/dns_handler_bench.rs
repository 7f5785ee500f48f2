//! In-process cost of answering one DNS query (no sockets): the handler's
//! share of the CPU per answer that `bench/dns.sh` measures end to end.
//!
//! ```text
//! cargo run --release --example dns_handler_bench
//! ```

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ccdir::dns::{Action, Transport, sample_handler};

fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut m = vec![
        0x12,
        0x34,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if let Some(size) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    m
}

fn main() {
    let handler = sample_handler();
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let cases = [
        (
            "CERT 1.3 KB, UDP, EDNS 4096",
            query("john.doe.example.org", 37, Some(4096)),
            Transport::Udp,
        ),
        (
            "CERT 1.3 KB, TCP",
            query("john.doe.example.org", 37, None),
            Transport::Tcp,
        ),
        (
            "CERT, truncated (UDP 512)",
            query("john.doe.example.org", 37, None),
            Transport::Udp,
        ),
        (
            "NXDOMAIN",
            query("nobody.example.org", 37, Some(1232)),
            Transport::Udp,
        ),
        ("REFUSED", query("example.com", 37, None), Transport::Udp),
    ];
    let n = 2_000_000;
    let mut out = Vec::with_capacity(4096);
    for (label, msg, transport) in &cases {
        let started = Instant::now();
        for _ in 0..n {
            let action = handler.handle(black_box(msg), src, *transport, &mut out);
            black_box((&action, out.len()));
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(n);
        let len = match handler.handle(msg, src, *transport, &mut out) {
            Action::Reply => out.len(),
            _ => 0,
        };
        println!("{label:<30} {ns:>7.0} ns/answer  ({len} octets)");
    }
}
