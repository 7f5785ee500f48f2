//! The LDAP front end against a real node on loopback port 0, with the
//! `ldap3` client crate (and raw sockets for bad input): what address books,
//! `ldapsearch` and Direct certificate discovery do, and what broken
//! clients send. `ldapsearch` itself is driven in `ldapsearch.rs`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ccdir::config::Config;
use ccdir::domain::pem_certificate;
use ccdir::pki::token::Role;
use chrono::Utc;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::exop::WhoAmI;
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestNode, TestPki, metric_value};

pub const BASE: &str = "dc=ccdir";
pub const ORG: &str = "heart-clinic";
pub const OTHER_ORG: &str = "lung-clinic";
pub const DOMAIN: &str = "direct.heart.example.org";
const OTHER_DOMAIN: &str = "direct.lung.example.org";
pub const USER: &str = "reader";
pub const PASSWORD: &str = "correct horse battery";

/// A node with two organisations, people (one internal), a domain entry
/// with a domain-bound certificate, and a user of the first organisation.
pub struct Fixture {
    pub node: TestNode,
    pub pki: TestPki,
}

/// `(local part, given name, surname, organisation, visibility)`.
const PEOPLE: &[(&str, &str, &str, &str, &str)] = &[
    ("alice.smith", "Alice", "Smith", ORG, "public"),
    ("bob.smithers", "Bob", "Smithers", ORG, "public"),
    ("carol.smitt", "Carol", "Smitt", ORG, "internal"),
    ("dan.jones", "Dan", "Jones", ORG, "public"),
    ("erin.smith", "Erin", "Smith", OTHER_ORG, "public"),
    ("frank.smiley", "Frank", "Smiley", OTHER_ORG, "internal"),
];

pub fn address(local: &str, org: &str) -> String {
    if org == ORG {
        format!("{local}@{DOMAIN}")
    } else {
        format!("{local}@{OTHER_DOMAIN}")
    }
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Fixture {
        let node = TestNode::start_with(tweak).await;
        let pki = TestPki::new("ldap");
        let admin = node.admin();
        for (id, name, domain) in [
            (ORG, "Boston Heart Clinic", DOMAIN),
            (OTHER_ORG, "Lung Clinic", OTHER_DOMAIN),
        ] {
            let res = node
                .http
                .put(node.url(&format!("/api/v1/organisations/{id}")))
                .bearer_auth(&admin)
                .json(&json!({"id": id, "name": name, "domains": [domain]}))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
        let res = node
            .http
            .post(node.url("/api/v1/anchors"))
            .bearer_auth(&admin)
            .header("content-type", "application/x-pem-file")
            .body(pki.root_pem())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        for (local, given, surname, org, visibility) in PEOPLE {
            let addr = address(local, org);
            put(
                &node,
                &addr,
                json!({
                    "given_name": given, "surname": surname, "organisation": org,
                    "visibility": visibility, "title": "MD", "locality": "Boston",
                    "certificates": [pem_certificate(&pki.valid_leaf(&addr)), pem_certificate(&pki.issuing_der())],
                }),
            )
            .await;
        }
        let now = Utc::now();
        let domain_cert = pki.leaf(
            None,
            Some(DOMAIN),
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(30),
        );
        put(
            &node,
            DOMAIN,
            json!({
                "kind": "domain", "display_name": "Heart Clinic Direct domain", "organisation": ORG,
                "certificates": [pem_certificate(&domain_cert)],
            }),
        )
        .await;
        let res = node
            .http
            .put(node.url(&format!("/api/v1/organisations/{ORG}/users/{USER}")))
            .bearer_auth(&admin)
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        node.indexed().await;
        Fixture { node, pki }
    }

    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr())
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.node
            .node
            .as_ref()
            .and_then(|n| n.ldap_addr)
            .expect("LDAP listens")
    }

    pub async fn client(&self) -> ldap3::Ldap {
        let (conn, ldap) = LdapConnAsync::new(&self.url()).await.expect("connect");
        ldap3::drive!(conn);
        ldap
    }

    pub async fn bound_client(&self) -> ldap3::Ldap {
        let mut ldap = self.client().await;
        ldap.simple_bind(&format!("uid={USER},o={ORG},{BASE}"), PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }
}

async fn put(node: &TestNode, address: &str, body: serde_json::Value) {
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{address}")))
        .bearer_auth(node.admin())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

/// Runs a search; returns entries and the result code.
async fn search(
    ldap: &mut ldap3::Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> (Vec<SearchEntry>, u32) {
    let ldap3::SearchResult(entries, result) = ldap
        .search(base, scope, filter, attrs)
        .await
        .expect("search");
    (
        entries.into_iter().map(SearchEntry::construct).collect(),
        result.rc,
    )
}

fn mails(entries: &[SearchEntry]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter_map(|e| e.attrs.get("mail").and_then(|m| m.first().cloned()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn root_dse_and_certificate_discovery() {
    let f = Fixture::new().await;
    let mut ldap = f.client().await;

    let (entries, rc) = search(&mut ldap, "", Scope::Base, "(objectClass=*)", &["+"]).await;
    assert_eq!(rc, 0);
    let dse = &entries[0].attrs;
    assert_eq!(dse["namingContexts"], [BASE]);
    assert_eq!(dse["supportedLDAPVersion"], ["3"]);
    assert!(dse["supportedControl"].contains(&"1.2.840.113556.1.4.319".to_owned()));
    assert!(dse["supportedExtension"].contains(&"1.3.6.1.4.1.4203.1.11.3".to_owned()));
    // Direct discovery asks for namingContexts by name.
    let (entries, _) = search(
        &mut ldap,
        "",
        Scope::Base,
        "(objectClass=*)",
        &["namingContexts"],
    )
    .await;
    assert_eq!(entries[0].attrs["namingContexts"], [BASE]);

    // mail= with ;binary: the exact DER, under exactly the name asked for.
    let alice = address("alice.smith", ORG);
    let (entries, rc) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(mail={alice})"),
        &["userCertificate;binary"],
    )
    .await;
    assert_eq!(rc, 0);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].dn, format!("mail={alice},o={ORG},{BASE}"));
    let ders = &entries[0].bin_attrs["userCertificate;binary"];
    assert_eq!(ders.len(), 1);
    let cert = ccdir::pki::parse_certificate_der(&ders[0]).expect("a DER certificate");
    assert_eq!(cert.email_addresses, std::slice::from_ref(&alice));
    assert!(!entries[0].attrs.contains_key("userCertificate"));

    // Plain userCertificate, as the Direct RI also asks; and the address in any case.
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(mail={})", alice.to_uppercase()),
        &["userCertificate"],
    )
    .await;
    assert_eq!(entries[0].bin_attrs["userCertificate"], *ders);

    // userSMIMECertificate: a certs-only PKCS#7 with the chain.
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(mail={alice})"),
        &["userSMIMECertificate"],
    )
    .await;
    let p7 = &entries[0].bin_attrs["userSMIMECertificate"][0];
    let inside = ccdir::pki::parse_certificates(p7).expect("PKCS#7");
    let inside: Vec<&[u8]> = inside.iter().map(|c| c.der.as_slice()).collect();
    assert!(inside.contains(&ders[0].as_slice()));
    assert!(inside.contains(&f.pki.issuing_der().as_slice()));

    // DCDT's shape, and the domain-bound certificate under (mail=<domain>).
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(&(mail={alice})(|(userCertificate;binary=*)(userCertificate=*)))"),
        &["userCertificate;binary"],
    )
    .await;
    assert_eq!(entries.len(), 1);
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(mail={DOMAIN})"),
        &["userCertificate;binary", "mail"],
    )
    .await;
    assert_eq!(entries.len(), 1);
    let cert =
        ccdir::pki::parse_certificate_der(&entries[0].bin_attrs["userCertificate;binary"][0])
            .unwrap();
    assert_eq!(cert.dns_names, [DOMAIN]);

    // Nobody: no entries, success.
    let (entries, rc) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        "(mail=nobody@nowhere.org)",
        &[],
    )
    .await;
    assert_eq!((entries.len(), rc), (0, 0));

    // Every operation shows in the Prometheus metrics.
    let metrics = f.node.metrics().await;
    let searches = metric_value(
        &metrics,
        "ccdir_ldap_operations_total{op=\"search\",code=\"0\"}",
    );
    assert!(searches >= 4.0, "{searches}");
    assert!(
        metrics.contains("ccdir_ldap_entries_returned_total "),
        "{metrics}"
    );
    assert!(metrics.contains("ccdir_ldap_operation_duration_seconds_count "));
    f.node.stop().await;
}

#[tokio::test]
async fn address_book_filters_scopes_and_attribute_selection() {
    let f = Fixture::new().await;
    let mut ldap = f.client().await;
    let public_smi = vec![
        address("alice.smith", ORG),
        address("bob.smithers", ORG),
        address("erin.smith", OTHER_ORG),
    ];

    // Thunderbird's and Outlook's autocomplete shapes.
    let (entries, rc) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        "(|(cn=smi*)(mail=smi*)(sn=smi*))",
        &["cn", "mail", "sn", "givenName"],
    )
    .await;
    assert_eq!(rc, 0);
    assert_eq!(mails(&entries), public_smi);
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        "(&(mail=*)(|(mail=smi*)(|(cn=smi*)(|(sn=smi*)(givenName=smi*)))))",
        &["cn", "mail"],
    )
    .await;
    assert_eq!(mails(&entries), public_smi);
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        "(|(cn=ali*)(mail=ali*)(sn=ali*))",
        &["mail"],
    )
    .await;
    assert_eq!(mails(&entries), [address("alice.smith", ORG)]);

    // Scopes: one organisation's subtree, one level under the base, an entry as base.
    let org_dn = format!("o={OTHER_ORG},{BASE}");
    let (entries, _) = search(&mut ldap, &org_dn, Scope::Subtree, "(sn=smi*)", &["mail"]).await;
    assert_eq!(mails(&entries), [address("erin.smith", OTHER_ORG)]);
    let (entries, _) = search(&mut ldap, &org_dn, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0].attrs["o"].contains(&"Lung Clinic".to_owned()));
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::OneLevel,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    let dns: HashSet<String> = entries.iter().map(|e| e.dn.clone()).collect();
    assert_eq!(
        dns,
        HashSet::from([format!("o={ORG},{BASE}"), format!("o={OTHER_ORG},{BASE}")])
    );
    let alice = address("alice.smith", ORG);
    let alice_dn = format!("mail={alice},o={ORG},{BASE}");
    let (entries, rc) = search(
        &mut ldap,
        &alice_dn,
        Scope::Base,
        "(objectClass=*)",
        &["cn"],
    )
    .await;
    assert_eq!((entries.len(), rc), (1, 0));
    assert_eq!(entries[0].attrs["cn"], ["Alice Smith"]);
    let (entries, rc) = search(
        &mut ldap,
        &alice_dn,
        Scope::OneLevel,
        "(objectClass=*)",
        &[],
    )
    .await;
    assert_eq!((entries.len(), rc), (0, 0));
    let wrong_org = format!("mail={alice},o={OTHER_ORG},{BASE}");
    let (_, rc) = search(&mut ldap, &wrong_org, Scope::Base, "(objectClass=*)", &[]).await;
    assert_eq!(rc, 32, "noSuchObject");
    let (_, rc) = search(
        &mut ldap,
        "dc=elsewhere",
        Scope::Subtree,
        "(objectClass=*)",
        &[],
    )
    .await;
    assert_eq!(rc, 32);

    // Three-valued not: an unknown attribute is Undefined, and so is its negation.
    let (entries, _) = search(
        &mut ldap,
        &org_dn,
        Scope::Subtree,
        "(!(nosuchattr=x))",
        &["1.1"],
    )
    .await;
    assert!(entries.is_empty());
    let (entries, _) = search(
        &mut ldap,
        &org_dn,
        Scope::OneLevel,
        "(!(sn=smith))",
        &["mail"],
    )
    .await;
    assert!(entries.is_empty(), "erin is Smith, frank is internal");
    let (entries, _) = search(
        &mut ldap,
        &format!("o={ORG},{BASE}"),
        Scope::OneLevel,
        "(&(sn=*)(!(sn=smi*)))",
        &["mail"],
    )
    .await;
    assert_eq!(mails(&entries), [address("dan.jones", ORG)]);

    // Attribute selection: *, +, 1.1 and typesOnly.
    let (entries, _) = search(&mut ldap, &alice_dn, Scope::Base, "(objectClass=*)", &["*"]).await;
    let e = &entries[0];
    assert!(e.attrs.contains_key("mail") && e.attrs.contains_key("sn"));
    assert!(e.bin_attrs.contains_key("userCertificate;binary"));
    assert!(!e.attrs.contains_key("entryDN"));
    let (entries, _) = search(&mut ldap, &alice_dn, Scope::Base, "(objectClass=*)", &["+"]).await;
    assert_eq!(entries[0].attrs["entryDN"], std::slice::from_ref(&alice_dn));
    assert!(!entries[0].attrs.contains_key("mail"));
    let (entries, _) = search(
        &mut ldap,
        &alice_dn,
        Scope::Base,
        "(objectClass=*)",
        &["1.1"],
    )
    .await;
    assert!(entries[0].attrs.is_empty() && entries[0].bin_attrs.is_empty());
    ldap.with_search_options(ldap3::SearchOptions::new().typesonly(true));
    let (entries, _) = search(
        &mut ldap,
        &alice_dn,
        Scope::Base,
        "(objectClass=*)",
        &["mail", "cn"],
    )
    .await;
    assert_eq!(entries[0].attrs["mail"], Vec::<String>::new());
    assert_eq!(entries[0].attrs["cn"], Vec::<String>::new());
    f.node.stop().await;
}

#[tokio::test]
async fn size_limits_and_paged_results() {
    let f = Fixture::with(|c| c.ldap.size_limit = 5).await;
    let mut ldap = f.client().await;
    // The client's limit: sizeLimitExceeded (4) with the entries sent.
    ldap.with_search_options(ldap3::SearchOptions::new().sizelimit(3));
    let (entries, rc) = search(&mut ldap, BASE, Scope::Subtree, "(objectClass=*)", &["1.1"]).await;
    assert_eq!((entries.len(), rc), (3, 4));
    // The server's limit.
    let (entries, rc) = search(&mut ldap, BASE, Scope::Subtree, "(objectClass=*)", &["1.1"]).await;
    assert_eq!((entries.len(), rc), (5, 4));
    // Under the limit: all of them.
    let (entries, rc) = search(&mut ldap, BASE, Scope::Subtree, "(sn=smi*)", &["1.1"]).await;
    assert_eq!((entries.len(), rc), (3, 0));

    // Paged results, two a page, across the whole tree: every node once.
    let adapters: Vec<Box<dyn Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(2))];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            BASE,
            Scope::Subtree,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .await
        .unwrap();
    let mut dns = Vec::new();
    while let Some(entry) = stream.next().await.unwrap() {
        dns.push(SearchEntry::construct(entry).dn);
    }
    let result = stream.finish().await;
    assert_eq!(result.rc, 0);
    let unique: HashSet<&String> = dns.iter().collect();
    // base + 2 organisations + 4 public people + the domain entry
    assert_eq!(dns.len(), 8, "{dns:?}");
    assert_eq!(unique.len(), dns.len());

    // A cookie from nowhere is refused.
    let forged = RawControl {
        ctype: "1.2.840.113556.1.4.319".into(),
        crit: false,
        val: Some(vec![
            0x30, 0x08, 0x02, 0x01, 0x02, 0x04, 0x03, b'a', b'b', b'c',
        ]),
    };
    ldap.with_controls(vec![forged]);
    let (_, rc) = search(&mut ldap, BASE, Scope::Subtree, "(objectClass=*)", &["1.1"]).await;
    assert_eq!(rc, 53);
    f.node.stop().await;
}

#[tokio::test]
async fn binds_decide_what_is_visible() {
    let f = Fixture::with(|c| {
        c.ldap.failed_binds_burst = 3;
        c.ldap.failed_binds_per_minute = 1;
    })
    .await;
    let carol = address("carol.smitt", ORG);
    let frank = address("frank.smiley", OTHER_ORG);
    let filter = "(|(cn=smi*)(mail=smi*)(sn=smi*))";

    let mut anonymous = f.client().await;
    anonymous
        .simple_bind("", "")
        .await
        .unwrap()
        .success()
        .unwrap();
    let (entries, _) = search(&mut anonymous, BASE, Scope::Subtree, filter, &["mail"]).await;
    assert!(!mails(&entries).contains(&carol));
    let (entries, _) = search(
        &mut anonymous,
        BASE,
        Scope::Subtree,
        &format!("(mail={carol})"),
        &[],
    )
    .await;
    assert!(
        entries.is_empty(),
        "internal entries stay hidden from anonymous clients"
    );
    let ldap3::result::ExopResult(exop, res) = anonymous.extended(WhoAmI).await.unwrap();
    assert_eq!(res.rc, 0);
    assert!(exop.val.unwrap_or_default().is_empty());

    let mut member = f.bound_client().await;
    let (entries, _) = search(&mut member, BASE, Scope::Subtree, filter, &["mail"]).await;
    let seen = mails(&entries);
    assert!(seen.contains(&carol), "{seen:?}");
    assert!(
        !seen.contains(&frank),
        "another organisation's internal entry"
    );
    let (entries, _) = search(
        &mut member,
        BASE,
        Scope::Subtree,
        &format!("(mail={carol})"),
        &["userCertificate;binary"],
    )
    .await;
    assert_eq!(entries.len(), 1);
    let ldap3::result::ExopResult(exop, _) = member.extended(WhoAmI).await.unwrap();
    assert_eq!(
        String::from_utf8(exop.val.unwrap()).unwrap(),
        format!("dn:uid={USER},o={ORG},{BASE}")
    );

    // Wrong password, unknown user, not a user DN: invalidCredentials (49).
    let mut client = f.client().await;
    for (dn, password) in [
        (format!("uid={USER},o={ORG},{BASE}"), "wrong password"),
        (format!("uid=nobody,o={ORG},{BASE}"), PASSWORD),
    ] {
        let res = client.simple_bind(&dn, password).await.unwrap();
        assert_eq!(res.rc, 49, "{dn}");
    }
    // The failed bind left the connection anonymous.
    let (entries, _) = search(
        &mut client,
        BASE,
        Scope::Subtree,
        &format!("(mail={carol})"),
        &[],
    )
    .await;
    assert!(entries.is_empty());
    // A bad DN is invalidDNSyntax (34); SASL and unauthenticated binds are refused.
    assert_eq!(client.simple_bind("not a dn", "x").await.unwrap().rc, 34);
    assert_eq!(
        client
            .simple_bind(&format!("uid={USER},o={ORG},{BASE}"), "")
            .await
            .unwrap()
            .rc,
        53
    );
    // Past the failed-bind budget (a burst of 3): busy (51), even with the right password.
    for _ in 0..2 {
        let res = client
            .simple_bind(&format!("uid=x,o={ORG},{BASE}"), "wrong password")
            .await
            .unwrap();
        assert_eq!(res.rc, 49);
    }
    let res = client
        .simple_bind(&format!("uid={USER},o={ORG},{BASE}"), PASSWORD)
        .await
        .unwrap();
    assert_eq!(res.rc, 51);

    // Users are managed by node admins and the organisation's own admins only.
    let other_admin = f.node.token(Role::OrgAdmin, Some(OTHER_ORG));
    let res = f
        .node
        .http
        .put(
            f.node
                .url(&format!("/api/v1/organisations/{ORG}/users/intruder")),
        )
        .bearer_auth(&other_admin)
        .json(&json!({"password": "long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let own_admin = f.node.token(Role::OrgAdmin, Some(ORG));
    let res = f
        .node
        .http
        .get(f.node.url(&format!("/api/v1/organisations/{ORG}/users")))
        .bearer_auth(&own_admin)
        .send()
        .await
        .unwrap();
    let users: serde_json::Value = res.json().await.unwrap();
    assert_eq!(users[0]["name"], USER);
    f.node.stop().await;
}

#[tokio::test]
async fn writes_are_refused_and_rest_changes_show_within_a_second() {
    let f = Fixture::new().await;
    let mut ldap = f.bound_client().await;
    let dn = format!("mail=new@{DOMAIN},o={ORG},{BASE}");
    let attrs = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("cn", HashSet::from(["New"])),
        ("sn", HashSet::from(["New"])),
    ];
    assert_eq!(ldap.add(&dn, attrs).await.unwrap().rc, 53);
    let alice_dn = format!("mail={},o={ORG},{BASE}", address("alice.smith", ORG));
    assert_eq!(ldap.delete(&alice_dn).await.unwrap().rc, 53);
    let change = vec![ldap3::Mod::Replace("cn", HashSet::from(["X"]))];
    assert_eq!(ldap.modify(&alice_dn, change).await.unwrap().rc, 53);
    assert_eq!(
        ldap.modifydn(&alice_dn, "mail=y@x.org", true, None)
            .await
            .unwrap()
            .rc,
        53
    );

    // A change through REST: visible over LDAP within a second, by address and by name.
    let started = Instant::now();
    let addr = format!("zelda.quinn@{DOMAIN}");
    put(
        &f.node,
        &addr,
        json!({"given_name": "Zelda", "surname": "Quinn", "organisation": ORG,
               "certificates": [pem_certificate(&f.pki.valid_leaf(&addr))]}),
    )
    .await;
    let written = Instant::now();
    let (entries, _) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &format!("(mail={addr})"),
        &["cn"],
    )
    .await;
    assert_eq!(entries.len(), 1);
    loop {
        let (entries, _) = search(
            &mut ldap,
            BASE,
            Scope::Subtree,
            "(|(cn=zel*)(mail=zel*)(sn=zel*))",
            &["mail"],
        )
        .await;
        if mails(&entries) == [addr.clone()] {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "not found by name a second after the write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    f.node.stop().await;
}

/// Polls an LDAP search until `check` accepts its entries; fails after a second.
async fn within_a_second(
    ldap: &mut ldap3::Ldap,
    filter: &str,
    attrs: &[&str],
    what: &str,
    check: impl Fn(&[SearchEntry]) -> bool,
) {
    let started = Instant::now();
    loop {
        let (entries, _) = search(ldap, BASE, Scope::Subtree, filter, attrs).await;
        if check(&entries) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn entries_read_before_a_rest_change_are_not_served_stale() {
    let f = Fixture::new().await;
    let mut ldap = f.client().await;
    let alice = address("alice.smith", ORG);
    let by_mail = format!("(mail={alice})");
    // Read twice, so the entry and its names are surely held in memory.
    for _ in 0..2 {
        let (entries, _) = search(&mut ldap, BASE, Scope::Subtree, &by_mail, &["cn"]).await;
        assert_eq!(entries.len(), 1);
        let (entries, _) = search(&mut ldap, BASE, Scope::Subtree, "(sn=smit*)", &["mail"]).await;
        assert!(mails(&entries).contains(&alice));
    }
    put(
        &f.node,
        &alice,
        json!({"given_name": "Alice", "surname": "Jonker", "display_name": "Alice Jonker",
               "organisation": ORG}),
    )
    .await;
    within_a_second(
        &mut ldap,
        &by_mail,
        &["cn", "sn"],
        "new name by mail",
        |e| e.len() == 1 && e[0].attrs.get("sn") == Some(&vec!["Jonker".to_string()]),
    )
    .await;
    within_a_second(
        &mut ldap,
        "(sn=jonk*)",
        &["mail"],
        "found by new name",
        |e| mails(e) == [alice.clone()],
    )
    .await;
    within_a_second(
        &mut ldap,
        "(sn=smit*)",
        &["mail"],
        "gone from old name",
        |e| !mails(e).contains(&alice),
    )
    .await;
    // Internal now: anonymous clients stop seeing it at once.
    put(
        &f.node,
        &alice,
        json!({"given_name": "Alice", "surname": "Jonker", "display_name": "Alice Jonker",
               "organisation": ORG, "visibility": "internal"}),
    )
    .await;
    within_a_second(&mut ldap, &by_mail, &["cn"], "hidden when internal", |e| {
        e.is_empty()
    })
    .await;
    within_a_second(&mut ldap, "(sn=jonk*)", &["mail"], "hidden by name", |e| {
        e.is_empty()
    })
    .await;
    let res = f
        .node
        .http
        .delete(f.node.url(&format!("/api/v1/entries/{alice}")))
        .bearer_auth(f.node.admin())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let mut bound = f.bound_client().await;
    within_a_second(&mut bound, &by_mail, &["cn"], "removed", |e| e.is_empty()).await;
    f.node.stop().await;
}

/// A self-signed certificate and key in `dir`, for LDAPS and StartTLS.
pub fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let now = Utc::now();
    let issued = ccdir::pki::ca::self_signed_server(
        &["localhost".into(), "127.0.0.1".into()],
        now - chrono::Duration::minutes(5),
        now + chrono::Duration::days(1),
        &mut rand::rng(),
    )
    .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, pem_certificate(&issued.cert_der)).unwrap();
    std::fs::write(&key, issued.key_pem.unwrap()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn starttls_and_ldaps() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    let f = Fixture::with(|c| {
        c.ldap.tls_cert_file = Some(cert);
        c.ldap.tls_key_file = Some(key);
    })
    .await;
    let alice = address("alice.smith", ORG);
    let filter = format!("(mail={alice})");

    // StartTLS on the plain port.
    let settings = LdapConnSettings::new()
        .set_starttls(true)
        .set_no_tls_verify(true);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &f.url())
        .await
        .unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(&format!("uid={USER},o={ORG},{BASE}"), PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let (entries, rc) = search(
        &mut ldap,
        BASE,
        Scope::Subtree,
        &filter,
        &["userCertificate;binary"],
    )
    .await;
    assert_eq!((entries.len(), rc), (1, 0));
    // The root DSE no longer offers StartTLS once it runs.
    let (dse, _) = search(
        &mut ldap,
        "",
        Scope::Base,
        "(objectClass=*)",
        &["supportedExtension"],
    )
    .await;
    assert!(!dse[0].attrs["supportedExtension"].contains(&"1.3.6.1.4.1.1466.20037".to_owned()));

    // LDAPS.
    let ldaps = f
        .node
        .node
        .as_ref()
        .unwrap()
        .ldaps_addr
        .expect("LDAPS listens");
    let settings = LdapConnSettings::new().set_no_tls_verify(true);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &format!("ldaps://{ldaps}"))
        .await
        .unwrap();
    ldap3::drive!(conn);
    let (entries, rc) = search(&mut ldap, BASE, Scope::Subtree, &filter, &["mail"]).await;
    assert_eq!((entries.len(), rc), (1, 0));

    // A plain client sees StartTLS offered.
    let mut plain = f.client().await;
    let (dse, _) = search(
        &mut plain,
        "",
        Scope::Base,
        "(objectClass=*)",
        &["supportedExtension"],
    )
    .await;
    assert!(dse[0].attrs["supportedExtension"].contains(&"1.3.6.1.4.1.1466.20037".to_owned()));
    f.node.stop().await;
}

/// DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Sends `bytes` on a fresh connection and reads until the server closes
/// or stays silent for a moment.
fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A SearchRequest message with `filter` given as raw BER.
fn raw_search(msgid: u8, base: &str, filter: &[u8]) -> Vec<u8> {
    let mut req = tlv(0x04, base.as_bytes());
    req.extend(tlv(0x0a, &[2]));
    req.extend(tlv(0x0a, &[0]));
    req.extend(tlv(0x02, &[0]));
    req.extend(tlv(0x02, &[0]));
    req.extend(tlv(0x01, &[0]));
    req.extend_from_slice(filter);
    req.extend(tlv(0x30, &[]));
    let mut msg = tlv(0x02, &[msgid]);
    msg.extend(tlv(0x63, &req));
    tlv(0x30, &msg)
}

#[tokio::test]
async fn bad_input_gets_an_answer_or_a_closed_connection_and_the_server_keeps_serving() {
    let f = Fixture::new().await;
    let addr = f.addr();
    let notice = b"1.3.6.1.4.1.1466.20036";
    let results = tokio::task::spawn_blocking(move || {
        vec![
            // Not BER at all.
            ("garbage", exchange(addr, b"GET / HTTP/1.1\r\n\r\n")),
            // A SEQUENCE whose content is not an LDAPMessage.
            ("malformed", exchange(addr, &tlv(0x30, &[0x04, 0x01, b'x']))),
            // Truncated inner BER.
            (
                "truncated",
                exchange(addr, &[0x30, 0x05, 0x02, 0x01, 0x01, 0x63, 0x10]),
            ),
            // Larger than the message limit (announced 16 MiB).
            (
                "oversized",
                exchange(addr, &[0x30, 0x84, 0x01, 0x00, 0x00, 0x00, 0x02]),
            ),
            // An operation that does not exist (application 30).
            (
                "unknown op",
                exchange(addr, &tlv(0x30, &[0x02, 0x01, 0x07, 0x5e, 0x00])),
            ),
        ]
    })
    .await
    .unwrap();
    for (what, (answer, closed)) in results {
        assert!(closed, "{what}: the server closes the connection");
        assert!(
            contains(&answer, notice),
            "{what}: a notice of disconnection"
        );
    }

    // A search whose filter does not decode: protocolError (2), connection kept.
    let bad_filter = raw_search(5, BASE, &tlv(0xac, &[]));
    let (answer, closed) = tokio::task::spawn_blocking(move || exchange(addr, &bad_filter))
        .await
        .unwrap();
    assert!(!closed);
    assert!(
        contains(&answer, &[0x65]) && contains(&answer, &[0x0a, 0x01, 0x02]),
        "{answer:02x?}"
    );

    // Through a real client: invalid DN syntax (34), a critical control we
    // do not know (12), a non-critical one ignored, an unknown extended operation (2).
    let mut ldap = f.client().await;
    let (_, rc) = search(
        &mut ldap,
        "this is not a dn",
        Scope::Subtree,
        "(mail=x)",
        &[],
    )
    .await;
    assert_eq!(rc, 34);
    ldap.with_controls(vec![RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: true,
        val: None,
    }]);
    let (_, rc) = search(&mut ldap, BASE, Scope::Subtree, "(mail=x)", &[]).await;
    assert_eq!(rc, 12);
    ldap.with_controls(vec![RawControl {
        ctype: "1.2.3.4.5".into(),
        crit: false,
        val: None,
    }]);
    let (_, rc) = search(&mut ldap, BASE, Scope::Subtree, "(mail=x)", &[]).await;
    assert_eq!(rc, 0);
    let ldap3::result::ExopResult(_, res) = ldap
        .extended(ldap3::exop::Exop {
            name: Some("1.2.3.4.6".into()),
            val: None,
        })
        .await
        .unwrap();
    assert_eq!(res.rc, 2);
    let res = ldap
        .compare(
            &format!("mail={},o={ORG},{BASE}", address("alice.smith", ORG)),
            "sn",
            "Smith",
        )
        .await
        .unwrap();
    assert_eq!(res.0.rc, 53);

    // And everyone else is still served.
    let mut second = f.client().await;
    let (entries, rc) = search(&mut second, BASE, Scope::Subtree, "(sn=smith)", &["mail"]).await;
    assert_eq!((entries.len(), rc), (2, 0));
    f.node.stop().await;
}

/// The fuzz target's corpus (fuzz/corpus/request_path), replayed through the
/// same request path function, so that CI runs every input found so far.
#[tokio::test]
async fn fuzz_corpus_replays_through_the_request_path() {
    let f = Fixture::new().await;
    let config = ccdir::config::LdapConfig {
        size_limit: 10,
        ..Default::default()
    };
    let ldap = ccdir::ldap::Ldap::new(f.node.directory().clone(), &config, None).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_path");
    let mut replayed = 0;
    for file in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let input = std::fs::read(file.unwrap().path()).unwrap();
        let answers = ccdir::ldap::answer_bytes(&ldap, &input).await;
        // Every input gets answers or a notice of disconnection, unless it
        // only holds requests without a response (unbind, abandon).
        let _ = answers;
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} corpus files");
    // A known sequence answers as a session would.
    let seeds = dir.join("session");
    let answers = ccdir::ldap::answer_bytes(&ldap, &std::fs::read(seeds).unwrap()).await;
    assert_eq!(
        answers.len(),
        4,
        "bind, search (one entry and done), bad DN search"
    );
    f.node.stop().await;
}

/// A broad address-book filter over more entries than one index window
/// holds: every page is right, no entry is lost or repeated, and a size
/// limit still stops at the limit with sizeLimitExceeded.
#[tokio::test]
async fn broad_filters_page_through_many_entries() {
    let f = Fixture::new().await;
    let n = 130;
    for i in 0..n {
        // Most match on sn, one in six on cn only, a few on both: the OR
        // branches fill their index windows at different speeds, so their
        // union is exact only up to the sooner one's end.
        let (given, surname) = match i % 6 {
            0 => (format!("Pagey{i:03}"), "Other".to_owned()),
            1 => ("Pagan".to_owned(), format!("Pagel{i:03}")),
            _ => ("Pat".to_owned(), format!("Pagewood{i:03}")),
        };
        let addr = address(&format!("p{i:03}"), ORG);
        put(
            &f.node,
            &addr,
            json!({"given_name": given, "surname": surname, "organisation": ORG}),
        )
        .await;
    }
    // A few in the other organisation, spread among them: a search under
    // that organisation reads past many windows of keys it must skip.
    let others: HashSet<String> = [7, 41, 77, 111, 128]
        .iter()
        .map(|i| address(&format!("p{i:03}x"), OTHER_ORG))
        .collect();
    for (k, addr) in others.iter().enumerate() {
        let (given, surname) = if k % 2 == 0 {
            ("Pagey", "Other")
        } else {
            ("Pat", "Pagewood")
        };
        put(
            &f.node,
            addr,
            json!({"given_name": given, "surname": surname, "organisation": OTHER_ORG}),
        )
        .await;
    }
    f.node.indexed().await;
    let filter = "(|(cn=pag*)(mail=nobody*)(sn=pag*))";
    let mut ldap = f.client().await;

    let adapters: Vec<Box<dyn Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(7))];
    let mut stream = ldap
        .streaming_search_with(adapters, BASE, Scope::Subtree, filter, vec!["mail"])
        .await
        .unwrap();
    let mut mails = Vec::new();
    while let Some(entry) = stream.next().await.unwrap() {
        mails.push(SearchEntry::construct(entry).attrs["mail"][0].clone());
    }
    assert_eq!(stream.finish().await.rc, 0);
    let unique: HashSet<&String> = mails.iter().collect();
    assert_eq!(unique.len(), mails.len(), "no entry twice");
    let expected: HashSet<String> = (0..n).map(|i| address(&format!("p{i:03}"), ORG)).collect();
    let got: HashSet<String> = mails.iter().cloned().collect();
    assert_eq!(got, &expected | &others);

    // Two a page under the other organisation: each page reads many
    // index windows of keys it must skip.
    let adapters: Vec<Box<dyn Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(2))];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            &format!("o={OTHER_ORG},{BASE}"),
            Scope::Subtree,
            filter,
            vec!["mail"],
        )
        .await
        .unwrap();
    let mut got = HashSet::new();
    while let Some(entry) = stream.next().await.unwrap() {
        got.insert(SearchEntry::construct(entry).attrs["mail"][0].clone());
    }
    assert_eq!(stream.finish().await.rc, 0);
    assert_eq!(got, others);

    ldap.with_search_options(ldap3::SearchOptions::new().sizelimit(50));
    let (entries, rc) = search(&mut ldap, BASE, Scope::Subtree, filter, &["mail"]).await;
    assert_eq!((entries.len(), rc), (50, 4));
    f.node.stop().await;
}
