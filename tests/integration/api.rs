//! The REST API against a real node on loopback, with `reqwest` as the
//! client and real certificates: the happy paths a user takes, and every
//! kind of bad input, each answered with a problem document and leaving
//! the directory as it was.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ccdir::domain::pem_certificate;
use ccdir::pki::token::{Claims, Role};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestNode, TestPki};

const ORG: &str = "heart-clinic";
const DOMAIN: &str = "direct.heart.example.org";

/// Creates the test organisation and makes `pki`'s root an anchor.
async fn setup(node: &TestNode, pki: &TestPki) {
    let res = node
        .http
        .post(node.url("/api/v1/organisations"))
        .bearer_auth(node.admin())
        .json(&json!({"id": ORG, "name": "Boston Heart Clinic", "domains": [DOMAIN], "locality": "Boston", "region": "MA", "country": "US"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let res = node
        .http
        .post(node.url("/api/v1/anchors"))
        .bearer_auth(node.admin())
        .header("content-type", "application/x-pem-file")
        .body(pki.root_pem())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// PUTs an entry with a valid certificate (and its issuing CA for the path).
async fn put_person(
    node: &TestNode,
    pki: &TestPki,
    local: &str,
    given: &str,
    surname: &str,
    specialty: &str,
    extra: Value,
) -> Value {
    let address = format!("{local}@{DOMAIN}");
    let mut body = json!({
        "given_name": given, "surname": surname, "organisation": ORG,
        "profession": "Physician", "specialty": specialty,
        "identifiers": [{"scheme": "NPI", "value": "1234567893"}],
        "locality": "Boston", "region": "MA", "country": "US",
        "certificates": [pem_certificate(&pki.valid_leaf(&address)), pem_certificate(&pki.issuing_der())],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{address}")))
        .bearer_auth(node.admin())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

/// Asserts a problem document of the given status and type slug.
async fn assert_problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("https://ccdir.dev/problems/{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

async fn entry_count(node: &TestNode) -> u64 {
    node.directory().count_entries().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_providers_with_their_certificates() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Search");
    setup(&node, &pki).await;
    put_person(
        &node,
        &pki,
        "alice.smith",
        "Alice",
        "Smith",
        "Cardiology",
        json!({}),
    )
    .await;
    put_person(
        &node,
        &pki,
        "bob.jones",
        "Bob",
        "Jones",
        "Cardiology",
        json!({}),
    )
    .await;
    put_person(
        &node,
        &pki,
        "carol.muller",
        "Carol",
        "Müller",
        "Dermatology",
        json!({"locality": "Cambridge"}),
    )
    .await;
    node.indexed().await;

    let res: Value = node
        .http
        .get(node.url("/api/v1/search?q=cardiology+boston"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = res["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{res}");
    let alice = results
        .iter()
        .find(|r| r["address"] == format!("alice.smith@{DOMAIN}"))
        .unwrap();
    assert_eq!(alice["organisation"], "Boston Heart Clinic");
    assert_eq!(alice["kind"], "person");
    assert_eq!(alice["locality"], "Boston");
    let cert = &alice["certificates"][0];
    assert_eq!(cert["binding"], "address");
    assert_eq!(cert["trust"], "trusted");
    assert_eq!(cert["fingerprint"].as_str().unwrap().len(), 64);
    assert!(res["next"].is_null());

    // Folding, typos and prefixes.
    for (q, who) in [
        ("muller", "carol.muller"),
        ("smyth", "alice.smith"),
        ("ali", "alice.smith"),
    ] {
        let res: Value = node
            .http
            .get(node.url(&format!("/api/v1/search?q={q}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            res["results"][0]["address"],
            format!("{who}@{DOMAIN}"),
            "{q}: {res}"
        );
    }

    // Filters.
    let res: Value = node
        .http
        .get(node.url("/api/v1/search?locality=cambridge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["results"].as_array().unwrap().len(), 1);
    let res: Value = node
        .http
        .get(node.url("/api/v1/search?q=boston&kind=domain"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["results"].as_array().unwrap().len(), 0);

    // Pagination visits every hit once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = node.url(&format!("/api/v1/search?org={ORG}&limit=1"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = node
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["address"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);

    let res = node
        .http
        .get(node.url("/api/v1/search?q=x&cursor=bogus"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid-input").await;
    let res = node
        .http
        .get(node.url("/api/v1/search?kind=robot"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid-input").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_come_in_every_representation() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Formats");
    setup(&node, &pki).await;
    let address = format!("dana@{DOMAIN}");
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{address}")))
        .bearer_auth(node.admin())
        .json(&json!({"given_name": "Dana", "surname": "Lee", "organisation": ORG}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.headers()["location"],
        format!("/api/v1/entries/{address}")
    );

    // Upload one as DER.
    let first = pki.valid_leaf(&address);
    let res = node
        .http
        .post(node.url(&format!("/api/v1/entries/{address}/certificates")))
        .bearer_auth(node.admin())
        .header("content-type", "application/pkix-cert")
        .body(first.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    // No chain was supplied and the issuing CA is not an anchor.
    assert_eq!(added[0]["trust"], "untrusted", "{added}");

    let get = |accept: &'static str| {
        node.http
            .get(node.url(&format!("/api/v1/entries/{address}/certificates")))
            .header("accept", accept)
            .send()
    };
    let der = get("application/pkix-cert").await.unwrap();
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    assert_eq!(der.bytes().await.unwrap().as_ref(), first.as_slice());

    // A second one with its chain, as a certs-only PKCS#7.
    let second = pki.valid_leaf(&address);
    let p7 = ccdir::core::certs_only_pkcs7(&[second.as_slice(), pki.issuing_der().as_slice()]);
    let res = node
        .http
        .post(node.url(&format!("/api/v1/entries/{address}/certificates")))
        .bearer_auth(node.admin())
        .header("content-type", "application/pkcs7-mime")
        .body(p7)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    assert_eq!(added[0]["trust"], "trusted", "{added}");
    assert_eq!(added[0]["assurance"], "medium");

    let json: Value = get("application/json").await.unwrap().json().await.unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let pem = get("application/x-pem-file")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        ccdir::pki::parse_certificates(pem.as_bytes())
            .unwrap()
            .len(),
        2
    );
    let bundle = get("text/html;q=0.9, application/pkcs7-mime")
        .await
        .unwrap();
    assert!(
        bundle.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/pkcs7-mime")
    );
    let certs = ccdir::pki::parse_certificates(&bundle.bytes().await.unwrap()).unwrap();
    assert_eq!(certs.len(), 3, "two leaves and the chain");
    assert_problem(
        get("application/pkix-cert").await.unwrap(),
        406,
        "not-acceptable",
    )
    .await;
    assert_problem(get("text/html").await.unwrap(), 406, "not-acceptable").await;

    // One by fingerprint, and removal.
    let fp = json[0]["fingerprint"].as_str().unwrap().to_owned();
    let one = node
        .http
        .get(node.url(&format!("/api/v1/entries/{address}/certificates/{fp}")))
        .header("accept", "application/pkix-cert")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/entries/{address}/certificates/{fp}")))
        .bearer_auth(node.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let json: Value = get("application/json").await.unwrap().json().await.unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_and_nothing_is_written() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Bad");
    setup(&node, &pki).await;
    let address = format!("erin@{DOMAIN}");
    put_person(&node, &pki, "erin", "Erin", "Wu", "Pediatrics", json!({})).await;
    let upload = |content_type: &'static str, body: Vec<u8>| {
        node.http
            .post(node.url(&format!("/api/v1/entries/{address}/certificates")))
            .bearer_auth(node.admin())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let good = pki.valid_leaf(&address);
    let mut truncated_p7 = ccdir::core::certs_only_pkcs7(&[good.as_slice()]);
    truncated_p7.truncate(truncated_p7.len() / 2);
    // Corrupt the DER deterministically: the TBSCertificate's SEQUENCE tag
    // (right after the outer 30 82 xx xx) becomes a SET. (A byte flipped at a
    // varying offset can land in a field that still parses.)
    let mut flipped = good.clone();
    assert_eq!(&flipped[..2], &[0x30, 0x82]);
    assert_eq!(flipped[4], 0x30);
    flipped[4] = 0x31;
    for (ct, body) in [
        (
            "application/x-pem-file",
            b"-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        ("application/pkix-cert", vec![0x30, 0x82, 0xff, 0xff, 0x01]),
        ("application/pkcs7-mime", truncated_p7),
        ("application/pkix-cert", flipped),
        ("application/octet-stream", Vec::new()),
    ] {
        let res = upload(ct, body).await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert!(status == 422 || status == 400, "{ct}: {status} {body}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("https://ccdir.dev/problems/")
        );
    }
    // A certificate for someone else.
    let other = pki.valid_leaf(&format!("mallory@{DOMAIN}"));
    let body = assert_problem(
        upload("application/pkix-cert", other).await.unwrap(),
        422,
        "certificate-not-bound",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("mallory"),
        "{body}"
    );
    // A domain-bound certificate on a person.
    let now = Utc::now();
    let domain_bound = pki.leaf(
        None,
        Some(DOMAIN),
        now - Duration::days(1),
        now + Duration::days(30),
    );
    assert_problem(
        upload("application/pkix-cert", domain_bound.clone())
            .await
            .unwrap(),
        422,
        "certificate-not-bound",
    )
    .await;
    // A CA certificate alone.
    assert_problem(
        upload("application/pkix-cert", pki.issuing_der())
            .await
            .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    // The wrong media type.
    assert_problem(
        upload("application/json", good).await.unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;

    let certs: Value = node
        .http
        .get(node.url(&format!("/api/v1/entries/{address}/certificates")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        certs.as_array().unwrap().len(),
        1,
        "only the certificate from put_person"
    );

    // The domain-bound certificate belongs on the domain entry.
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{DOMAIN}")))
        .bearer_auth(node.admin())
        .json(&json!({"display_name": "Heart Clinic domain", "organisation": ORG,
                      "certificates": [base64::engine::general_purpose::STANDARD.encode(&domain_bound)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(entry["kind"], "domain");
    assert_eq!(entry["certificates"][0]["binding"], "domain");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problems_and_change_nothing() {
    let node = TestNode::start_with(|c| c.api.max_body_bytes = 4096).await;
    let pki = TestPki::new("Json");
    setup(&node, &pki).await;
    put_person(&node, &pki, "frank", "Frank", "Ito", "Oncology", json!({})).await;
    let before = entry_count(&node).await;
    let put = |path: String, body: String| {
        node.http
            .put(node.url(&path))
            .bearer_auth(node.admin())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let ok_path = format!("/api/v1/entries/gina@{DOMAIN}");
    let body = assert_problem(
        put(
            ok_path.clone(),
            r#"{"given_name":"Gina","nmae":"x"}"#.into(),
        )
        .await
        .unwrap(),
        400,
        "malformed",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `nmae`"),
        "{body}"
    );
    assert_problem(
        put(ok_path.clone(), "{not json".into()).await.unwrap(),
        400,
        "malformed",
    )
    .await;
    assert_problem(
        put(ok_path.clone(), json!({"visibility": "secret"}).to_string())
            .await
            .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    assert_problem(
        put(ok_path.clone(), json!({"country": "Boston"}).to_string())
            .await
            .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    assert_problem(
        put(
            ok_path.clone(),
            json!({"organisation": "no-such-org"}).to_string(),
        )
        .await
        .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    assert_problem(
        put(
            ok_path.clone(),
            json!({"organisation": ORG, "identifiers": [{"scheme": "NPI", "value": "1234567890"}]})
                .to_string(),
        )
        .await
        .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    assert_problem(
        put(
            "/api/v1/entries/gina@elsewhere.example.com".into(),
            json!({"organisation": ORG}).to_string(),
        )
        .await
        .unwrap(),
        400,
        "invalid-input",
    )
    .await;
    assert_problem(
        put("/api/v1/entries/not%20an%20address".into(), "{}".into())
            .await
            .unwrap(),
        400,
        "invalid-address",
    )
    .await;
    assert_problem(
        put("/api/v1/entries/a..b@x.org".into(), "{}".into())
            .await
            .unwrap(),
        400,
        "invalid-address",
    )
    .await;
    let huge = json!({"display_name": "x".repeat(10_000)}).to_string();
    assert_problem(
        put(ok_path.clone(), huge).await.unwrap(),
        413,
        "payload-too-large",
    )
    .await;
    let res = node
        .http
        .post(node.url(&format!("/api/v1/entries/frank@{DOMAIN}/certificates")))
        .bearer_auth(node.admin())
        .header("content-type", "application/pkix-cert")
        .body(vec![0u8; 10_000])
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload-too-large").await;
    assert_problem(
        node.http
            .get(node.url("/api/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_problem(
        node.http
            .get(node.url(&format!("/api/v1/entries/nobody@{DOMAIN}")))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;

    assert_eq!(entry_count(&node).await, before);
    // The server still serves.
    let res = node
        .http
        .get(node.url(&format!("/api/v1/entries/frank@{DOMAIN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    node.stop().await;
}

/// A JWT with any header and claims, signed by `sign`.
fn jwt(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig = sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64URL.encode(sig))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Tokens");
    setup(&node, &pki).await;
    let before = entry_count(&node).await;
    let write = |token: Option<String>| {
        let mut req = node
            .http
            .put(node.url(&format!("/api/v1/entries/hank@{DOMAIN}")))
            .json(&json!({"given_name": "Hank", "organisation": ORG}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let res = write(None).await.unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    assert_problem(res, 401, "unauthenticated").await;
    assert_problem(
        write(Some("garbage".into())).await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;

    let now = Utc::now().timestamp();
    let issuer = node.directory().node_id().to_string();
    let claims = json!({"sub": "x", "role": "node-admin", "iss": issuer, "iat": now, "exp": now + 600, "jti": "1"});
    // Wrong algorithms.
    let hs256 = jwt(json!({"alg": "HS256", "typ": "JWT"}), &claims, |m| {
        m.to_vec()
    });
    assert_problem(write(Some(hs256)).await.unwrap(), 401, "unauthenticated").await;
    let none = jwt(json!({"alg": "none", "typ": "JWT"}), &claims, |_| {
        Vec::new()
    });
    assert_problem(write(Some(none)).await.unwrap(), 401, "unauthenticated").await;
    // Right algorithm, wrong key.
    let stranger = ccdir::pki::NodeKey::generate(&mut rand::rng());
    let forged = jwt(json!({"alg": "EdDSA", "typ": "JWT"}), &claims, |m| {
        stranger.sign(m).to_vec()
    });
    assert_problem(write(Some(forged)).await.unwrap(), 401, "unauthenticated").await;
    // Right key, expired.
    let expired = Claims {
        sub: "x".into(),
        role: Role::NodeAdmin,
        org: None,
        iss: issuer.clone(),
        iat: now - 7200,
        exp: now - 3600,
        jti: "2".into(),
    };
    let expired = ccdir::pki::token::issue(&node.key, &expired).unwrap();
    assert_problem(write(Some(expired)).await.unwrap(), 401, "unauthenticated").await;
    // A valid token signed by the node works; the same claims with one byte changed do not.
    let good = jwt(json!({"alg": "EdDSA", "typ": "JWT"}), &claims, |m| {
        node.key.sign(m).to_vec()
    });
    let mut tampered = good.clone().into_bytes();
    let mid = tampered.len() - 10;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    assert_problem(
        write(Some(String::from_utf8(tampered).unwrap()))
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(entry_count(&node).await, before);
    assert_eq!(
        write(Some(good)).await.unwrap().status(),
        StatusCode::CREATED
    );
    // Basic auth is not a bearer token.
    let res = node
        .http
        .get(node.url("/api/v1/search"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthenticated").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_admins_are_confined_and_internal_entries_stay_internal() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Orgs");
    setup(&node, &pki).await;
    let res = node
        .http
        .put(node.url("/api/v1/organisations/other-clinic"))
        .bearer_auth(node.admin())
        .json(&json!({"name": "Other Clinic", "domains": ["other.example.org"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let ours = node.token(Role::OrgAdmin, Some(ORG));
    let theirs = node.token(Role::OrgAdmin, Some("other-clinic"));

    let put = |token: &str, address: String, body: Value| {
        node.http
            .put(node.url(&format!("/api/v1/entries/{address}")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let secret = format!("night.nurse@{DOMAIN}");
    let res = put(&ours, secret.clone(), json!({"given_name": "Night", "surname": "Nurse", "organisation": ORG, "visibility": "internal"})).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_problem(
        put(&theirs, format!("x@{DOMAIN}"), json!({"organisation": ORG}))
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        put(&ours, "x@nowhere.example.net".into(), json!({}))
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let res = node
        .http
        .delete(node.url("/api/v1/organisations/other-clinic"))
        .bearer_auth(&ours)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    node.indexed().await;

    let get = |token: Option<&str>| {
        let mut req = node
            .http
            .get(node.url(&format!("/api/v1/entries/{secret}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_problem(get(None).await.unwrap(), 404, "not-found").await;
    assert_problem(get(Some(&theirs)).await.unwrap(), 404, "not-found").await;
    assert_eq!(get(Some(&ours)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get(Some(&node.admin())).await.unwrap().status(),
        StatusCode::OK
    );

    let search = |token: Option<&str>| {
        let mut req = node.http.get(node.url("/api/v1/search?q=nurse"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let anon: Value = search(None).await.unwrap().json().await.unwrap();
    assert_eq!(anon["total"], 0, "{anon}");
    assert!(anon["results"].as_array().unwrap().is_empty());
    let other: Value = search(Some(&theirs)).await.unwrap().json().await.unwrap();
    assert_eq!(other["total"], 0);
    let own: Value = search(Some(&ours)).await.unwrap().json().await.unwrap();
    assert_eq!(own["results"][0]["address"], secret);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_and_anchors_have_a_lifecycle() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Life");
    let admin = node.admin();
    let org_body = json!({"id": ORG, "name": "Heart", "domains": [DOMAIN]});
    let post = || {
        node.http
            .post(node.url("/api/v1/organisations"))
            .bearer_auth(&admin)
            .json(&org_body)
            .send()
    };
    assert_eq!(post().await.unwrap().status(), StatusCode::CREATED);
    assert_problem(post().await.unwrap(), 409, "conflict").await;
    let res = node
        .http
        .put(node.url(&format!("/api/v1/organisations/{ORG}")))
        .bearer_auth(&admin)
        .json(&json!({"name": "Boston Heart", "domains": [DOMAIN]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = node
        .http
        .get(node.url("/api/v1/organisations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "Boston Heart");

    // A certificate from a CA the node does not trust yet.
    put_person(&node, &pki, "ivy", "Ivy", "Chen", "Cardiology", json!({})).await;
    let certs = |n: &TestNode| {
        n.http
            .get(n.url(&format!("/api/v1/entries/ivy@{DOMAIN}/certificates")))
            .send()
    };
    let before: Value = certs(&node).await.unwrap().json().await.unwrap();
    assert_eq!(before[0]["trust"], "untrusted");
    assert!(
        before[0]["trust_reason"]
            .as_str()
            .unwrap()
            .contains("Life Root"),
        "{before}"
    );

    // Trusting its root re-judges it.
    let generation = node.directory().trust_generation();
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
    let anchors: Value = res.json().await.unwrap();
    let fp = anchors[0]["fingerprint"].as_str().unwrap().to_owned();
    node.directory().wait_trust_generation(generation).await;
    let after: Value = certs(&node).await.unwrap().json().await.unwrap();
    assert_eq!(after[0]["trust"], "trusted", "{after}");

    let pem = node
        .http
        .get(node.url(&format!("/api/v1/anchors/{fp}")))
        .header("accept", "application/x-pem-file")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pem, pki.root_pem());

    let generation = node.directory().trust_generation();
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/anchors/{fp}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    node.directory().wait_trust_generation(generation).await;
    let again: Value = certs(&node).await.unwrap().json().await.unwrap();
    assert_eq!(again[0]["trust"], "untrusted");

    // An organisation with entries cannot go; without them it can.
    let delete_org = || {
        node.http
            .delete(node.url(&format!("/api/v1/organisations/{ORG}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_problem(delete_org().await.unwrap(), 409, "conflict").await;
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/entries/ivy@{DOMAIN}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(delete_org().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(
        node.http
            .get(node.url(&format!("/api/v1/organisations/{ORG}")))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trust_state_shows() {
    let node = TestNode::start().await;
    let pki = TestPki::new("States");
    let stranger = TestPki::new("Stranger");
    setup(&node, &pki).await;
    let now = Utc::now();
    let cases = [
        (
            "old",
            pki.leaf(
                Some(&format!("old@{DOMAIN}")),
                None,
                now - Duration::days(400),
                now - Duration::days(1),
            ),
            "expired",
        ),
        (
            "early",
            pki.leaf(
                Some(&format!("early@{DOMAIN}")),
                None,
                now + Duration::days(5),
                now + Duration::days(400),
            ),
            "not-yet-valid",
        ),
        (
            "strange",
            stranger.valid_leaf(&format!("strange@{DOMAIN}")),
            "untrusted",
        ),
        ("fine", pki.valid_leaf(&format!("fine@{DOMAIN}")), "trusted"),
    ];
    for (local, der, expected) in cases {
        let res = node
            .http
            .put(node.url(&format!("/api/v1/entries/{local}@{DOMAIN}")))
            .bearer_auth(node.admin())
            .json(&json!({"display_name": local, "organisation": ORG,
                          "certificates": [pem_certificate(&der), pem_certificate(&pki.issuing_der())]}))
            .send()
            .await
            .unwrap();
        let entry: Value = res.json().await.unwrap();
        assert_eq!(
            entry["certificates"][0]["trust"], expected,
            "{local}: {entry}"
        );
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429() {
    let node = TestNode::start_with(|c| {
        c.api.rate_limit_per_second = 1;
        c.api.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let res = node.http.get(node.url("/healthz")).send().await.unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(res);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    let res = limited.expect("the limit was reached");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    assert_problem(res, 429, "rate-limited").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_the_openapi_document() {
    let node = TestNode::start().await;
    let health: Value = node
        .http
        .get(node.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = node
        .http
        .get(node.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "sqlite");
    assert_eq!(ready["node"], node.directory().node_id().to_string());
    let metrics = node.metrics().await;
    assert!(
        metrics.contains(
            "ccdir_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("ccdir_index_applied_seq"));

    let served = node
        .http
        .get(node.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/ccdir.json"))
            .unwrap();
    assert!(
        served == committed,
        "openapi/ccdir.json is stale: run `cargo run -- openapi -o openapi/ccdir.json`"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
        }
    }
    assert!(doc["paths"]["/api/v1/search"]["get"].is_object());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_show_in_search_promptly() {
    let node = TestNode::start().await;
    let pki = TestPki::new("Prompt");
    setup(&node, &pki).await;
    put_person(
        &node,
        &pki,
        "jade.okafor",
        "Jade",
        "Okafor",
        "Nephrology",
        json!({}),
    )
    .await;
    let find = || async {
        let res: Value = node
            .http
            .get(node.url("/api/v1/search?q=okafor"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["results"].as_array().unwrap().len()
    };
    let started = std::time::Instant::now();
    while find().await == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "not searchable within a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/entries/jade.okafor@{DOMAIN}")))
        .bearer_auth(node.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    while find().await != 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "still found a second after removal"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    node.stop().await;
}

/// A closed directory has released its index, so the next process (or this
/// one) can open it at once: background tasks must not keep it alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_directory_releases_its_index() {
    use ccdir::core::IndexMode;
    let dir = tempfile::tempdir().unwrap();
    let config = ccdir::config::Config {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    for _ in 0..3 {
        let directory = ccdir::app::open_directory(
            &config,
            ccdir::pki::NodeKey::generate(&mut rand::rng()),
            IndexMode::Required(config.index_path()),
            ccdir::telemetry::Metrics::new(),
        )
        .await
        .expect("the index is free");
        // A write wakes the catch-up task; close while it is at work.
        let admin = ccdir::domain::Caller::NodeAdmin {
            subject: "t".into(),
        };
        let input = ccdir::domain::OrganisationInput {
            name: "Org".into(),
            ..Default::default()
        };
        directory
            .put_organisation(&admin, &"org".parse().unwrap(), input)
            .await
            .unwrap();
        directory.close().await;
    }
}
