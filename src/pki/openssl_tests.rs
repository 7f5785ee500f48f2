//! Cross-checks against the `openssl` command line tool: certificates,
//! signature algorithms and bundles made by OpenSSL must read and validate
//! here, and what we write must read and validate there.
//!
//! Run only with `CCDIR_TEST_OPENSSL=1` (CI sets it); otherwise each test
//! returns at once, so `cargo test` needs nothing but the Rust toolchain.

use std::path::Path;
use std::process::Command;

use chrono::Duration;

use super::asn1::Reader;
use super::ca::KeyType;
use super::testkit::{now, pki};
use super::verify::{decode_spki, verify_each_way};
use super::view::CertView;
use super::{NodeKey, TrustStore, certs_only_pkcs7, parse_certificates, to_pem};
use crate::domain::{Assurance, Certificate, Fingerprint, TrustStatus};

fn enabled() -> bool {
    std::env::var("CCDIR_TEST_OPENSSL").as_deref() == Ok("1")
}

/// A scratch directory to run openssl in.
struct Osl {
    dir: tempfile::TempDir,
}

impl Osl {
    fn new() -> Self {
        Osl {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir.path().join(name), data).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }
}

/// How one OpenSSL-made chain is keyed and signed.
struct Variant {
    name: &'static str,
    /// `openssl genpkey` arguments for the CA keys.
    ca_key: &'static [&'static str],
    /// Digest option for signing (`-sha256`), empty for Ed25519.
    digest: &'static [&'static str],
    /// Extra `-sigopt`s (RSA-PSS).
    sigopt: &'static [&'static str],
    /// What our parser should call the CA key.
    key_name: &'static str,
}

const RSA: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];

const VARIANTS: &[Variant] = &[
    Variant {
        name: "rsa-sha256",
        ca_key: RSA,
        digest: &["-sha256"],
        sigopt: &[],
        key_name: "rsa-2048",
    },
    Variant {
        name: "rsa-sha1",
        ca_key: RSA,
        digest: &["-sha1"],
        sigopt: &[],
        key_name: "rsa-2048",
    },
    Variant {
        name: "rsa-sha512",
        ca_key: RSA,
        digest: &["-sha512"],
        sigopt: &[],
        key_name: "rsa-2048",
    },
    Variant {
        name: "rsa-pss-sha256",
        ca_key: RSA,
        digest: &["-sha256"],
        sigopt: &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1",
        ],
        key_name: "rsa-2048",
    },
    Variant {
        name: "rsa-pss-sha384-salt20",
        ca_key: RSA,
        digest: &["-sha384"],
        sigopt: &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:20",
        ],
        key_name: "rsa-2048",
    },
    Variant {
        name: "rsa-pss-key",
        ca_key: &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
        digest: &["-sha256"],
        sigopt: &[],
        key_name: "rsa-pss-2048",
    },
    Variant {
        name: "p256-sha256",
        ca_key: P256,
        digest: &["-sha256"],
        sigopt: &[],
        key_name: "ecdsa-p256",
    },
    Variant {
        name: "p256-sha512",
        ca_key: P256,
        digest: &["-sha512"],
        sigopt: &[],
        key_name: "ecdsa-p256",
    },
    Variant {
        name: "p256-sha1",
        ca_key: P256,
        digest: &["-sha1"],
        sigopt: &[],
        key_name: "ecdsa-p256",
    },
    Variant {
        name: "p384-sha384",
        ca_key: P384,
        digest: &["-sha384"],
        sigopt: &[],
        key_name: "ecdsa-p384",
    },
    Variant {
        name: "p384-sha256",
        ca_key: P384,
        digest: &["-sha256"],
        sigopt: &[],
        key_name: "ecdsa-p384",
    },
    Variant {
        name: "ed25519",
        ca_key: &["-algorithm", "ED25519"],
        digest: &[],
        sigopt: &[],
        key_name: "ed25519",
    },
];

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
const LEAF_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:Bob@Example.ORG,DNS:Direct.EXAMPLE.org\ncertificatePolicies=2.16.840.1.101.3.2.1.3.12\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

/// root.pem, inter.pem, leaf.pem (+ keys) made by openssl.
fn openssl_chain(o: &Osl, v: &Variant) {
    o.write("ca.ext", CA_EXT.as_bytes());
    o.write("leaf.ext", LEAF_EXT.as_bytes());
    let mut genpkey = vec!["genpkey"];
    genpkey.extend_from_slice(v.ca_key);
    for k in ["root.key", "inter.key"] {
        let mut a = genpkey.clone();
        a.extend_from_slice(&["-out", k]);
        o.run(&a);
    }
    o.run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "leaf.key",
    ]);

    let mut a = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        "root.key",
        "-subj",
        "/O=OSSL/CN=OSSL Root",
        "-days",
        "30",
    ];
    a.extend_from_slice(v.digest);
    a.extend_from_slice(v.sigopt);
    a.extend_from_slice(&[
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "root.pem",
    ]);
    o.run(&a);

    for (key, subj, ca, ca_key, ext, out, serial) in [
        (
            "inter.key",
            "/O=OSSL/CN=OSSL Inter",
            "root.pem",
            "root.key",
            "ca.ext",
            "inter.pem",
            "0x1001",
        ),
        (
            "leaf.key",
            "/O=OSSL/CN=OSSL Leaf",
            "inter.pem",
            "inter.key",
            "leaf.ext",
            "leaf.pem",
            "0x00ff02",
        ),
    ] {
        o.run(&["req", "-new", "-key", key, "-subj", subj, "-out", "x.csr"]);
        let mut a = vec![
            "x509",
            "-req",
            "-in",
            "x.csr",
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-set_serial",
            serial,
            "-days",
            "20",
            "-extfile",
            ext,
            "-out",
            out,
        ];
        a.extend_from_slice(v.digest);
        a.extend_from_slice(v.sigopt);
        o.run(&a);
    }
}

fn one(o: &Osl, name: &str) -> Certificate {
    let mut c = parse_certificates(&o.read(name)).unwrap();
    assert_eq!(c.len(), 1);
    c.remove(0)
}

#[test]
fn openssl_chains_of_every_algorithm_validate() {
    if !enabled() {
        return;
    }
    let mut ring_covered = 0;
    for v in VARIANTS {
        let o = Osl::new();
        openssl_chain(&o, v);
        let (root, inter, leaf) = (
            one(&o, "root.pem"),
            one(&o, "inter.pem"),
            one(&o, "leaf.pem"),
        );
        assert_eq!(root.key_algorithm, v.key_name, "{}", v.name);
        let at = leaf.not_before + Duration::hours(1);
        let store = TrustStore::new(std::slice::from_ref(&root));
        let verdict = store.evaluate(&leaf, std::slice::from_ref(&inter), at);
        assert_eq!(
            verdict.status,
            TrustStatus::Trusted,
            "{}: {verdict:?}",
            v.name
        );

        // Both verifiers, each on its own: ring (where it applies) and RustCrypto.
        let iv = CertView::parse(&inter.der).unwrap();
        let key = decode_spki(iv.spki).unwrap();
        let lv = CertView::parse(&leaf.der).unwrap();
        let (ring, rc) = verify_each_way(&key, &lv.sig_alg, lv.tbs, lv.signature);
        assert_ne!(ring, Some(false), "{}", v.name);
        assert_eq!(rc, Ok(()), "{}", v.name);
        ring_covered += usize::from(ring == Some(true));

        let mut der = leaf.der.clone();
        let n = der.len();
        der[n - 3] ^= 0x10;
        let bad = super::parse_certificate_der(&der).unwrap();
        let verdict = store.evaluate(&bad, std::slice::from_ref(&inter), at);
        assert_eq!(
            verdict.status,
            TrustStatus::Untrusted,
            "{}: {verdict:?}",
            v.name
        );
        assert!(
            verdict.reason.contains("does not verify"),
            "{}: {verdict:?}",
            v.name
        );
    }
    // rsa-sha1/256/512, rsa-pss-sha256, p256-sha256, p384-sha384/256 at least.
    assert!(ring_covered >= 7, "ring verified {ring_covered} variants");
}

#[test]
fn fields_agree_with_openssl() {
    if !enabled() {
        return;
    }
    let o = Osl::new();
    openssl_chain(&o, &VARIANTS[0]);
    let leaf = one(&o, "leaf.pem");
    let fp = o.run(&[
        "x509",
        "-in",
        "leaf.pem",
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let fp: Fingerprint = fp.trim().rsplit('=').next().unwrap().parse().unwrap();
    assert_eq!(leaf.fingerprint, fp);
    let serial = o.run(&["x509", "-in", "leaf.pem", "-noout", "-serial"]);
    assert_eq!(
        leaf.serial,
        serial.trim().trim_start_matches("serial=").to_lowercase()
    );
    assert_eq!(leaf.serial, "ff02");
    let subject = o.run(&[
        "x509", "-in", "leaf.pem", "-noout", "-subject", "-nameopt", "RFC2253",
    ]);
    assert_eq!(leaf.subject, subject.trim().trim_start_matches("subject="));
    let issuer = o.run(&[
        "x509", "-in", "leaf.pem", "-noout", "-issuer", "-nameopt", "RFC2253",
    ]);
    assert_eq!(leaf.issuer, issuer.trim().trim_start_matches("issuer="));
    assert_eq!(leaf.email_addresses, vec!["Bob@Example.ORG".to_string()]);
    assert_eq!(leaf.dns_names, vec!["direct.example.org".to_string()]);
    assert_eq!(
        leaf.extended_key_usage,
        vec!["1.3.6.1.5.5.7.3.4".to_string()]
    );
    assert_eq!(leaf.assurance, Some(Assurance::MediumHardware));
    assert_eq!(leaf.key_algorithm, "rsa-2048");
    assert!(!leaf.is_ca);
    let dates = o.run(&[
        "x509", "-in", "leaf.pem", "-noout", "-enddate", "-dateopt", "iso_8601",
    ]);
    let end = dates
        .trim()
        .trim_start_matches("notAfter=")
        .replace(' ', "T");
    assert_eq!(
        leaf.not_after,
        chrono::DateTime::parse_from_rfc3339(&end).unwrap()
    );
}

#[test]
fn openssl_pkcs7_der_pem_and_streamed_ber_are_read() {
    if !enabled() {
        return;
    }
    let o = Osl::new();
    openssl_chain(&o, &VARIANTS[6]);
    let all = [o.read("leaf.pem"), o.read("inter.pem"), o.read("root.pem")].concat();
    o.write("all.pem", &all);
    let want: Vec<Fingerprint> = parse_certificates(&all)
        .unwrap()
        .iter()
        .map(|c| c.fingerprint)
        .collect();
    assert_eq!(want.len(), 3);

    o.run(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        "all.pem",
        "-outform",
        "DER",
        "-out",
        "b.p7b",
    ]);
    o.run(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        "all.pem",
        "-out",
        "b.p7b.pem",
    ]);
    for f in ["b.p7b", "b.p7b.pem"] {
        let got: Vec<Fingerprint> = parse_certificates(&o.read(f))
            .unwrap()
            .iter()
            .map(|c| c.fingerprint)
            .collect();
        assert_eq!(got.len(), 3, "{f}");
        for fp in &want {
            assert!(got.contains(fp), "{f}");
        }
    }

    // A streamed (indefinite-length BER) signed message carries the signer and its chain.
    o.run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "s.key",
    ]);
    o.write("msg.txt", b"hello\r\n");
    o.run(&[
        "cms",
        "-sign",
        "-stream",
        "-binary",
        "-nodetach",
        "-in",
        "msg.txt",
        "-signer",
        "leaf.pem",
        "-inkey",
        "leaf.key",
        "-certfile",
        "inter.pem",
        "-outform",
        "DER",
        "-out",
        "signed.p7m",
    ]);
    let ber = o.read("signed.p7m");
    assert_eq!(
        ber.get(1),
        Some(&0x80),
        "openssl wrote indefinite-length BER"
    );
    assert!(Reader::der(&ber).read().is_err());
    let got: Vec<Fingerprint> = parse_certificates(&ber)
        .unwrap()
        .iter()
        .map(|c| c.fingerprint)
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&want[0]) && got.contains(&want[1]));
}

#[test]
fn openssl_reads_what_we_write() {
    if !enabled() {
        return;
    }
    let o = Osl::new();
    for (i, kt) in [
        KeyType::EcdsaP256,
        KeyType::Rsa2048,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
    ]
    .into_iter()
    .enumerate()
    {
        let p = pki(kt, 60 + i as u64);
        let ders = [&p.leaf.der[..], &p.inter_cert.der[..], &p.root_cert.der[..]];
        o.write("ours.p7b", &certs_only_pkcs7(&ders));
        let printed = o.run(&["pkcs7", "-inform", "DER", "-in", "ours.p7b", "-print_certs"]);
        for c in [&p.leaf, &p.inter_cert, &p.root_cert] {
            assert!(
                printed.contains(&format!(
                    "CN = {}",
                    c.subject
                        .split(',')
                        .next()
                        .unwrap()
                        .trim_start_matches("CN=")
                )),
                "{printed}"
            );
        }
        let back: Vec<Fingerprint> = parse_certificates(printed.as_bytes())
            .unwrap()
            .iter()
            .map(|c| c.fingerprint)
            .collect();
        assert_eq!(
            back,
            vec![
                p.leaf.fingerprint,
                p.inter_cert.fingerprint,
                p.root_cert.fingerprint
            ]
        );

        o.write(
            "root.pem",
            to_pem("CERTIFICATE", &[&p.root_cert.der]).as_bytes(),
        );
        o.write(
            "inter.pem",
            to_pem("CERTIFICATE", &[&p.inter_cert.der]).as_bytes(),
        );
        o.write("leaf.pem", to_pem("CERTIFICATE", &[&p.leaf.der]).as_bytes());
        let at = now().timestamp().to_string();
        let out = o.run(&[
            "verify",
            "-attime",
            &at,
            "-purpose",
            "smimesign",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "inter.pem",
            "leaf.pem",
        ]);
        assert!(out.contains("leaf.pem: OK"), "{kt:?}: {out}");

        o.write("ca.key", p.inter.key_pem().unwrap().as_bytes());
        o.run(&["pkey", "-in", "ca.key", "-noout"]);
        let text = o.run(&[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage,certificatePolicies",
        ]);
        assert!(text.contains("email:Alice@Example.org"), "{text}");
        assert!(text.contains("E-mail Protection"), "{text}");
        assert!(text.contains("2.16.840.1.101.3.2.1.3.3"), "{text}");
    }
}

#[test]
fn node_key_interoperates() {
    if !enabled() {
        return;
    }
    let o = Osl::new();
    let key = NodeKey::generate(&mut super::testkit::rng(70));
    let path = o.path("node.key");
    key.save_pem(Path::new(&path)).unwrap();
    o.run(&["pkey", "-in", "node.key", "-pubout", "-out", "node.pub"]);
    o.write("msg", b"signed by the node");
    o.write("sig", &key.sign(b"signed by the node"));
    let out = o.run(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", "node.pub", "-rawin", "-in", "msg", "-sigfile",
        "sig",
    ]);
    assert!(out.contains("Signature Verified Successfully"), "{out}");
    // And the other way: openssl signs, we verify.
    o.run(&[
        "pkeyutl", "-sign", "-inkey", "node.key", "-rawin", "-in", "msg", "-out", "sig2",
    ]);
    super::verify_ed25519(
        &key.public_key_bytes(),
        b"signed by the node",
        &o.read("sig2"),
    )
    .unwrap();
}

/// A v1 self-signed root (no extensions at all, as old roots are) is a usable
/// anchor; a v1 certificate as an intermediate is not a CA.
#[test]
fn v1_root_is_an_anchor_but_not_an_intermediate() {
    if !enabled() {
        return;
    }
    let o = Osl::new();
    // The v1 root has no SKI, so the leaf gets no AKI.
    let ext = LEAF_EXT.replace("authorityKeyIdentifier=keyid\n", "");
    o.write("leaf.ext", ext.as_bytes());
    for k in ["root.key", "leaf.key"] {
        o.run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            k,
        ]);
    }
    o.run(&[
        "req",
        "-new",
        "-key",
        "root.key",
        "-subj",
        "/CN=V1 Root",
        "-out",
        "r.csr",
    ]);
    o.run(&[
        "x509", "-req", "-in", "r.csr", "-signkey", "root.key", "-days", "30", "-out", "root.pem",
    ]);
    o.run(&[
        "req",
        "-new",
        "-key",
        "leaf.key",
        "-subj",
        "/CN=V1 Leaf",
        "-out",
        "l.csr",
    ]);
    o.run(&[
        "x509",
        "-req",
        "-in",
        "l.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-set_serial",
        "7",
        "-days",
        "20",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    let (root, leaf) = (one(&o, "root.pem"), one(&o, "leaf.pem"));
    assert!(!root.is_ca);
    let at = leaf.not_before + Duration::hours(1);
    let v = TrustStore::new(std::slice::from_ref(&root)).evaluate(&leaf, &[], at);
    assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
    // The same v1 certificate offered as an intermediate below another anchor
    // would have to be a CA; it is not.
    let other = pki(KeyType::EcdsaP256, 71);
    let v = TrustStore::new(std::slice::from_ref(&other.root_cert)).evaluate(&leaf, &[root], at);
    assert_eq!(v.status, TrustStatus::Untrusted, "{v:?}");
    assert_eq!(v.reason, "CN=V1 Root is not a CA");
}

/// Trust bundles: a `.p7b` made by `openssl crl2pkcs7`, signed by `openssl
/// cms -sign` (DER and streamed BER) and `openssl smime -sign` (PEM), reads
/// here with the signer checked; a tampered one is a signature mismatch;
/// and a `.p7m` made here verifies with `openssl cms -verify`.
#[test]
fn openssl_signed_bundles_read_here_and_ours_verify_there() {
    if !enabled() {
        return;
    }
    use super::bundle::{BundleError, read_bundle};
    use super::ca::CertAuthority;
    use super::testkit::{ca_spec, rng};

    for (i, kt) in [KeyType::EcdsaP256, KeyType::Rsa2048]
        .into_iter()
        .enumerate()
    {
        let osl = Osl::new();
        let mut r = rng(700 + i as u64);
        let root = CertAuthority::new_root(&ca_spec("Bundle Root", kt), &mut r).unwrap();
        let signing = root
            .issue_intermediate(&ca_spec("Bundle Signing", kt), &mut r)
            .unwrap();
        let carried = pki(KeyType::EcdsaP256, 710 + i as u64);
        let anchors = [carried.root_cert.clone(), carried.inter_cert.clone()];
        osl.write(
            "anchors.pem",
            to_pem("CERTIFICATE", &[&anchors[0].der, &anchors[1].der]).as_bytes(),
        );
        osl.write(
            "root.pem",
            to_pem("CERTIFICATE", &[root.cert_der()]).as_bytes(),
        );
        osl.write(
            "signer.pem",
            to_pem("CERTIFICATE", &[signing.cert_der()]).as_bytes(),
        );
        osl.write("signer.key", signing.key_pem().unwrap().as_bytes());
        osl.run(&[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "anchors.pem",
            "-outform",
            "DER",
            "-out",
            "bundle.p7b",
        ]);
        let sign = |extra: &[&str], out: &str| {
            let mut args = vec![
                "cms",
                "-sign",
                "-nodetach",
                "-binary",
                "-in",
                "bundle.p7b",
                "-signer",
                "signer.pem",
                "-inkey",
                "signer.key",
                "-md",
                "sha256",
                "-out",
                out,
            ];
            args.extend_from_slice(extra);
            osl.run(&args);
        };
        sign(&["-outform", "DER"], "bundle.p7m");
        sign(&["-outform", "DER", "-stream"], "stream.p7m");
        osl.run(&[
            "smime",
            "-sign",
            "-nodetach",
            "-binary",
            "-in",
            "bundle.p7b",
            "-signer",
            "signer.pem",
            "-inkey",
            "signer.key",
            "-outform",
            "PEM",
            "-out",
            "smime.pem",
        ]);
        let want: Vec<Fingerprint> = anchors.iter().map(|c| c.fingerprint).collect();
        let signer = root.certificate().unwrap();
        let p7b = osl.read("bundle.p7b");
        let unsigned = super::bundle::read_bundle(&p7b, None, now()).unwrap();
        assert_eq!(
            unsigned
                .certificates
                .iter()
                .map(|c| c.fingerprint)
                .collect::<Vec<_>>(),
            want
        );
        for file in ["bundle.p7m", "stream.p7m", "smime.pem"] {
            let bytes = osl.read(file);
            let got = read_bundle(&bytes, Some(&signer), now())
                .unwrap_or_else(|e| panic!("{kt:?} {file}: {e}"));
            let fps: Vec<Fingerprint> = got.certificates.iter().map(|c| c.fingerprint).collect();
            assert_eq!(fps, want, "{kt:?} {file}");
        }
        // One bit of the content changed: the digest no longer matches.
        let mut tampered = osl.read("bundle.p7m");
        let at = tampered
            .windows(anchors[1].der.len())
            .position(|w| w == anchors[1].der.as_slice())
            .unwrap()
            + 50;
        tampered[at] ^= 0x04;
        assert!(
            matches!(
                read_bundle(&tampered, Some(&signer), now()),
                Err(BundleError::SignatureMismatch(_))
            ),
            "{kt:?}"
        );

        // Ours, checked by OpenSSL.
        let ours = signing.sign_cms(&p7b, &mut r).unwrap();
        osl.write("ours.p7m", &ours);
        // The test CAs are valid from 2029: verify as of the tests' "now".
        let at = now().timestamp().to_string();
        osl.run(&[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "ours.p7m",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-attime",
            &at,
            "-binary",
            "-out",
            "content.p7b",
        ]);
        assert_eq!(osl.read("content.p7b"), p7b, "{kt:?}");
    }
}
