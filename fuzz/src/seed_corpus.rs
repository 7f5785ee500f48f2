//! Writes the seed inputs of the `request_path` corpus: real LDAP messages
//! of every kind the server meets (encoded by ldap3_proto's codec), alone
//! and in sequences, plus a few broken ones.

use std::path::Path;

use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use ldap3_proto::{LdapCodec, parse_ldap_filter_str};
use tokio_util::codec::Encoder;

fn encode(msgs: Vec<LdapMsg>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for m in msgs {
        LdapCodec::default().encode(m, &mut buf).expect("encode");
    }
    buf.to_vec()
}

fn msg(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: vec![],
    }
}

fn search(msgid: i32, base: &str, scope: LdapSearchScope, filter: &str, attrs: &[&str]) -> LdapMsg {
    msg(
        msgid,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: base.into(),
            scope,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter: parse_ldap_filter_str(filter).expect("filter"),
            attrs: attrs.iter().map(|s| s.to_string()).collect(),
        }),
    )
}

fn bind(msgid: i32, dn: &str, pw: &str) -> LdapMsg {
    msg(
        msgid,
        LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.into(),
            cred: LdapBindCred::Simple(pw.into()),
        }),
    )
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/request_path");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut paged = search(4, "dc=ccdir", LdapSearchScope::Subtree, "(objectClass=*)", &["1.1"]);
    paged.ctrl = vec![LdapControl::SimplePagedResults {
        size: 2,
        cookie: vec![],
    }];
    let mut critical = search(5, "dc=ccdir", LdapSearchScope::Subtree, "(mail=x)", &[]);
    critical.ctrl = vec![LdapControl::ManageDsaIT { criticality: true }];
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("bind_anonymous", encode(vec![bind(1, "", "")])),
        ("bind_user", encode(vec![bind(1, "uid=reader,o=acme,dc=ccdir", "password1")])),
        ("root_dse", encode(vec![search(2, "", LdapSearchScope::Base, "(objectClass=*)", &["+"])])),
        ("mail_lookup", encode(vec![search(3, "dc=ccdir", LdapSearchScope::Subtree, "(mail=alice.smith@acme.example.org)", &["userCertificate;binary"])])),
        ("thunderbird", encode(vec![search(3, "dc=ccdir", LdapSearchScope::Subtree, "(|(cn=smi*)(mail=smi*)(sn=smi*))", &["cn", "mail"])])),
        ("outlook", encode(vec![search(3, "dc=ccdir", LdapSearchScope::Subtree, "(&(mail=*)(|(mail=smi*)(|(cn=smi*)(|(sn=smi*)(givenName=smi*)))))", &["*"])])),
        ("not_and_or", encode(vec![search(3, "o=acme,dc=ccdir", LdapSearchScope::OneLevel, "(&(sn=*)(!(sn=smi*))(|(cn~=bob)(l>=a)(l<=z)))", &["*", "+"])])),
        ("entry_base", encode(vec![search(3, "mail=alice.smith@acme.example.org,o=acme,dc=ccdir", LdapSearchScope::Base, "(objectClass=*)", &["userSMIMECertificate"])])),
        ("paged", encode(vec![paged])),
        ("critical_control", encode(vec![critical])),
        ("whoami_starttls_unbind", encode(vec![
            msg(6, LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.3".into(), value: None })),
            msg(7, LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.1466.20037".into(), value: None })),
            msg(8, LdapOp::UnbindRequest),
        ])),
        ("writes", encode(vec![
            msg(9, LdapOp::DelRequest("mail=alice.smith@acme.example.org,o=acme,dc=ccdir".into())),
            msg(10, LdapOp::AbandonRequest(3)),
        ])),
        ("session", encode(vec![
            bind(1, "", ""),
            search(2, "dc=ccdir", LdapSearchScope::Subtree, "(sn=jones)", &[]),
            search(3, "bad dn", LdapSearchScope::Subtree, "(sn=jones)", &[]),
            msg(4, LdapOp::UnbindRequest),
        ])),
        ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("oversized_header", vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02]),
        ("unknown_op", vec![0x30, 0x05, 0x02, 0x01, 0x07, 0x5e, 0x00]),
        ("bad_filter", vec![0x30, 0x1b, 0x02, 0x01, 0x05, 0x63, 0x16, 0x04, 0x08, b'd', b'c', b'=', b'c', b'c', b'd', b'i', b'r', 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00]),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
    eprintln!("seeds written to {}", dir.display());
}
