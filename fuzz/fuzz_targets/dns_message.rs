//! Fuzzes DNS message handling: any bytes, as a UDP datagram and as a TCP
//! frame, through the real handler (parse, dispatch, answer, transfer).
//! Properties: no panic; an answer is a well-formed header with the
//! request's id and QR set, and never larger than a UDP requester may take.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use ccdir::dns::{Action, Handler, Transport, sample_handler};
use libfuzzer_sys::fuzz_target;

fn handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(sample_handler)
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for transport in [Transport::Udp, Transport::Tcp] {
        match handler().handle(data, src, transport, &mut out) {
            Action::Reply => {
                assert!(out.len() >= 12);
                assert_eq!(out[0..2], data[0..2]);
                assert!(out[2] & 0x80 != 0);
                if transport == Transport::Udp {
                    assert!(out.len() <= 4096);
                }
            }
            Action::Drop => {}
            Action::Resolve(_) => panic!("the fixed view holds every certificate"),
            Action::Transfer(mut transfer) => {
                let mut messages = 0;
                while transfer.next_message(&mut out) {
                    messages += 1;
                    assert!(out.len() <= 65_535 && messages < 10_000);
                }
            }
        }
    }
});
