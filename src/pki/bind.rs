//! Does a certificate belong to a directory entry? (Direct Applicability
//! Statement §1.4: address-bound and domain-bound certificates.)
//!
//! A mailbox entry takes a certificate whose rfc822Name SAN equals its address
//! (both parts compared without regard to ASCII case, as every deployed mail
//! system does); a domain entry takes one whose dNSName SAN equals its domain.
//! Only subjectAltName counts: Direct requires it, and the legacy subject
//! `emailAddress` is not a binding. Wildcard dNSNames never match. A CA
//! certificate is never an entry's certificate.

use super::PkiError;
use crate::domain::{Address, Binding, Certificate, DirectoryAddress, DomainName};

fn mailbox_matches(san: &str, address: &Address) -> bool {
    let Some((local, domain)) = san.rsplit_once('@') else {
        return false;
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    local.eq_ignore_ascii_case(address.local())
        && domain.eq_ignore_ascii_case(address.domain().as_str())
}

fn dns_matches(san: &str, domain: &DomainName) -> bool {
    let san = san.strip_suffix('.').unwrap_or(san);
    san.eq_ignore_ascii_case(domain.as_str())
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

/// How `cert` binds to the entry published under `address`, or why it does not.
///
/// The reason in [`PkiError::NotBound`] says what the certificate carries so
/// the operator knows where it belongs.
pub fn bind(cert: &Certificate, address: &DirectoryAddress) -> Result<Binding, PkiError> {
    let refuse = |reason: String| Err(PkiError::NotBound { reason });
    if cert.is_ca {
        return refuse(format!(
            "certificate {} is a CA certificate; add it as a trust anchor or send it as an \
             intermediate, not as an entry's certificate",
            cert.subject
        ));
    }
    match address {
        DirectoryAddress::Mailbox(addr) => {
            if cert
                .email_addresses
                .iter()
                .any(|san| mailbox_matches(san, addr))
            {
                return Ok(Binding::Address);
            }
            if !cert.email_addresses.is_empty() {
                return refuse(format!(
                    "certificate names {}, not {addr}",
                    list(&cert.email_addresses)
                ));
            }
            if cert.dns_names.iter().any(|d| dns_matches(d, addr.domain())) {
                return refuse(format!(
                    "certificate is domain-bound to {0}; attach it to the domain entry {0}",
                    addr.domain()
                ));
            }
            if !cert.dns_names.is_empty() {
                return refuse(format!(
                    "certificate is domain-bound to {}, not to {addr} or its domain",
                    list(&cert.dns_names)
                ));
            }
            refuse(format!(
                "certificate carries no rfc822Name or dNSName subjectAltName; it cannot be bound to {addr}"
            ))
        }
        DirectoryAddress::Domain(domain) => {
            if cert.dns_names.iter().any(|d| dns_matches(d, domain)) {
                return Ok(Binding::Domain);
            }
            if !cert.dns_names.is_empty() {
                return refuse(format!(
                    "certificate names DNS {}, not {domain}",
                    list(&cert.dns_names)
                ));
            }
            if !cert.email_addresses.is_empty() {
                return refuse(format!(
                    "certificate is address-bound to {}; attach it to that mailbox entry, not to the domain {domain}",
                    list(&cert.email_addresses)
                ));
            }
            refuse(format!(
                "certificate carries no rfc822Name or dNSName subjectAltName; it cannot be bound to {domain}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Fingerprint;
    use crate::error::ErrorKind;

    fn cert(emails: &[&str], dns: &[&str], is_ca: bool) -> Certificate {
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        Certificate {
            fingerprint: Fingerprint([0; 32]),
            der: vec![],
            subject: "CN=Test".into(),
            issuer: "CN=Issuer".into(),
            serial: "01".into(),
            not_before: t,
            not_after: t,
            email_addresses: emails.iter().map(|s| s.to_string()).collect(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            key_usage: vec![],
            extended_key_usage: vec![],
            policies: vec![],
            assurance: None,
            key_algorithm: "ecdsa-p256".into(),
            is_ca,
        }
    }

    fn addr(s: &str) -> DirectoryAddress {
        s.parse().unwrap()
    }

    fn reason(r: Result<Binding, PkiError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CertificateNotBound);
        e.to_string()
    }

    #[test]
    fn mailbox_matches_ignoring_case_in_both_parts() {
        let c = cert(&["Alice.Smith@Cardio.Example.org"], &[], false);
        assert_eq!(
            bind(&c, &addr("alice.smith@cardio.example.org")).unwrap(),
            Binding::Address
        );
        assert_eq!(
            bind(&c, &addr("ALICE.SMITH@CARDIO.EXAMPLE.ORG")).unwrap(),
            Binding::Address
        );
        let c = cert(&["other@x.org", "bob@x.org"], &[], false);
        assert_eq!(bind(&c, &addr("bob@x.org")).unwrap(), Binding::Address);
    }

    #[test]
    fn domain_matches_dns_name() {
        let c = cert(&[], &["direct.example.org"], false);
        assert_eq!(
            bind(&c, &addr("Direct.Example.org")).unwrap(),
            Binding::Domain
        );
        let c = cert(&[], &["direct.example.org."], false);
        assert_eq!(
            bind(&c, &addr("direct.example.org")).unwrap(),
            Binding::Domain
        );
    }

    #[test]
    fn refusals_say_what_the_certificate_carries() {
        let alice = cert(&["alice@x.org"], &[], false);
        assert_eq!(
            reason(bind(&alice, &addr("bob@x.org"))),
            "certificate names alice@x.org, not bob@x.org"
        );
        assert_eq!(
            reason(bind(&alice, &addr("x.org"))),
            "certificate is address-bound to alice@x.org; attach it to that mailbox entry, not to the domain x.org"
        );
        let dom = cert(&[], &["x.org"], false);
        assert_eq!(
            reason(bind(&dom, &addr("bob@x.org"))),
            "certificate is domain-bound to x.org; attach it to the domain entry x.org"
        );
        assert_eq!(
            reason(bind(&dom, &addr("bob@y.org"))),
            "certificate is domain-bound to x.org, not to bob@y.org or its domain"
        );
        assert_eq!(
            reason(bind(&dom, &addr("y.org"))),
            "certificate names DNS x.org, not y.org"
        );
        let bare = cert(&[], &[], false);
        assert!(reason(bind(&bare, &addr("bob@x.org"))).contains("no rfc822Name or dNSName"));
        assert!(reason(bind(&bare, &addr("x.org"))).contains("no rfc822Name or dNSName"));
    }

    #[test]
    fn no_partial_or_wildcard_matches() {
        let c = cert(
            &["bob@x.org.evil", "bob@sub.x.org", "xbob@x.org"],
            &["*.x.org", "sub.x.org"],
            false,
        );
        assert!(bind(&c, &addr("bob@x.org")).is_err());
        assert!(bind(&c, &addr("x.org")).is_err());
        let c = cert(&["not-an-address"], &[], false);
        assert!(bind(&c, &addr("bob@x.org")).is_err());
    }

    #[test]
    fn a_ca_is_never_bound() {
        let c = cert(&["bob@x.org"], &["x.org"], true);
        assert!(reason(bind(&c, &addr("bob@x.org"))).contains("is a CA certificate"));
        assert!(bind(&c, &addr("x.org")).is_err());
    }
}
