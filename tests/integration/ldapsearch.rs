//! The real `ldapsearch` (Debian's ldap-utils) against a real node, as
//! PROTOCOLS.md §3 lists the checks. Runs when `CCDIR_TEST_LDAPSEARCH=1`
//! (CI sets it and installs ldap-utils); then a missing `ldapsearch` or
//! `openssl` is a failure, not a skip.

use std::process::{Command, Output};

use crate::ldap::{BASE, DOMAIN, Fixture, ORG, PASSWORD, USER, address, tls_files};

fn enabled() -> bool {
    let on = std::env::var("CCDIR_TEST_LDAPSEARCH").is_ok_and(|v| v == "1");
    if on {
        for tool in ["ldapsearch", "openssl"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "CCDIR_TEST_LDAPSEARCH=1 but `{tool}` is not installed (apt-get install ldap-utils openssl)"
            );
        }
    } else {
        eprintln!("ldapsearch tests not run: set CCDIR_TEST_LDAPSEARCH=1 (needs ldap-utils)");
    }
    on
}

/// Runs ldapsearch with `args` (TLS certificates not verified: ours is self-signed).
fn ldapsearch(args: &[&str]) -> Output {
    Command::new("ldapsearch")
        .args(args)
        .env("LDAPTLS_REQCERT", "never")
        .output()
        .expect("run ldapsearch")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn ldapsearch_finds_what_clients_need() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    let f = Fixture::with(|c| {
        c.ldap.tls_cert_file = Some(cert);
        c.ldap.tls_key_file = Some(key);
    })
    .await;
    let url = f.url();
    let alice = address("alice.smith", ORG);
    let carol = address("carol.smitt", ORG);
    let user_dn = format!("uid={USER},o={ORG},{BASE}");
    let out_dir = dir.path().join("values");
    std::fs::create_dir(&out_dir).unwrap();
    let out_dir_s = out_dir.to_str().unwrap().to_owned();
    let checks = tokio::task::spawn_blocking(move || {
        // The root DSE.
        let o = ldapsearch(&["-x", "-H", &url, "-b", "", "-s", "base", "+"]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains(&format!("namingContexts: {BASE}")), "{t}");
        assert!(t.contains("supportedLDAPVersion: 3"), "{t}");
        assert!(
            t.contains("supportedControl: 1.2.840.113556.1.4.319"),
            "{t}"
        );
        assert!(
            t.contains("supportedExtension: 1.3.6.1.4.1.1466.20037"),
            "{t}"
        );

        // mail= with ;binary, written to a file and read by openssl as DER.
        let o = ldapsearch(&[
            "-x",
            "-LLL",
            "-H",
            &url,
            "-b",
            BASE,
            "-tt",
            "-T",
            &out_dir_s,
            &format!("(mail={alice})"),
            "userCertificate;binary",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("userCertificate;binary:<"), "{t}");
        let file = std::fs::read_dir(&out_dir_s)
            .unwrap()
            .next()
            .expect("a value file")
            .unwrap()
            .path();
        let x509 = Command::new("openssl")
            .args([
                "x509",
                "-inform",
                "DER",
                "-noout",
                "-ext",
                "subjectAltName",
                "-in",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(x509.status.success(), "{}", text(&x509));
        assert!(
            text(&x509).contains(&format!("email:{alice}")),
            "{}",
            text(&x509)
        );

        // The domain-bound certificate.
        let o = ldapsearch(&[
            "-x",
            "-LLL",
            "-H",
            &url,
            "-b",
            BASE,
            &format!("(mail={DOMAIN})"),
            "userCertificate;binary",
        ]);
        assert!(
            text(&o).contains("userCertificate;binary::"),
            "{}",
            text(&o)
        );

        // Paged results, two a page: every node once, exit 0.
        let o = ldapsearch(&[
            "-x",
            "-H",
            &url,
            "-b",
            BASE,
            "-E",
            "pr=2/noprompt",
            "(objectClass=*)",
            "1.1",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("# numEntries: 8"), "{}", text(&o));

        // Size limit: exit status 4 with the entries sent.
        let o = ldapsearch(&["-x", "-H", &url, "-b", BASE, "-z", "3", "(objectClass=*)"]);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        assert!(
            text(&o).contains("result: 4 Size limit exceeded"),
            "{}",
            text(&o)
        );
        assert!(text(&o).contains("# numEntries: 3"), "{}", text(&o));

        // StartTLS, required.
        let o = ldapsearch(&[
            "-x",
            "-ZZ",
            "-LLL",
            "-H",
            &url,
            "-b",
            BASE,
            &format!("(mail={alice})"),
            "mail",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("mail: {alice}")), "{}", text(&o));

        // Thunderbird's and Outlook's filter shapes.
        for filter in [
            "(|(cn=smi*)(mail=smi*)(sn=smi*))",
            "(&(mail=*)(|(mail=smi*)(|(cn=smi*)(|(sn=smi*)(givenName=smi*)))))",
        ] {
            let o = ldapsearch(&["-x", "-LLL", "-H", &url, "-b", BASE, filter, "mail", "cn"]);
            assert!(o.status.success(), "{}", text(&o));
            let t = text(&o);
            assert!(t.contains(&format!("mail: {alice}")), "{filter}: {t}");
            assert!(
                !t.contains(&carol),
                "{filter}: internal entry shown anonymously"
            );
        }

        // Bound, the organisation's internal entry shows; with a bad password, exit 49.
        let filter = format!("(mail={carol})");
        let o = ldapsearch(&[
            "-x", "-LLL", "-H", &url, "-D", &user_dn, "-w", PASSWORD, "-b", BASE, &filter, "mail",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("mail: {carol}")), "{}", text(&o));
        let o = ldapsearch(&["-x", "-LLL", "-H", &url, "-b", BASE, &filter, "mail"]);
        assert!(
            !text(&o).contains(&format!("mail: {carol}")),
            "{}",
            text(&o)
        );
        let o = ldapsearch(&[
            "-x",
            "-H",
            &url,
            "-D",
            &user_dn,
            "-w",
            "wrong password",
            "-b",
            BASE,
            &filter,
        ]);
        assert_eq!(o.status.code(), Some(49), "{}", text(&o));
        true
    })
    .await;
    f.node.stop().await;
    assert!(checks.expect("ldapsearch checks"));
}
