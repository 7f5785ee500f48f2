//! Writing a hosted zone as an RFC 1035 master file (`ccdir export zone`),
//! for a secondary to load or to diff. Names are absolute and escaped
//! (`\DDD` for every octet outside `a-z0-9-_`); CERT records are written by
//! us in the RFC 4398 §2.2 presentation form, `CERT PKIX 0 0 <base64>`,
//! because hickory's `Display` does not read back (PROTOCOLS §1.3).

use std::io::{self, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::zones::Zone;
use crate::core::{NameKey, PublishedCerts};

/// Writes `zone` with the certificates in `names` at `serial`. Returns the
/// number of records written.
pub fn write_zone(
    zone: &Zone,
    serial: u32,
    names: &[(NameKey, PublishedCerts)],
    out: &mut dyn Write,
) -> io::Result<usize> {
    let apex = zone.apex.to_presentation();
    writeln!(out, "; zone {apex} as published by ccdir, serial {serial}")?;
    writeln!(
        out,
        "{apex} {} IN SOA {} {} {serial} {} {} {} {}",
        zone.soa_ttl, zone.mname, zone.rname, zone.refresh, zone.retry, zone.expire, zone.minimum
    )?;
    let mut count = 1;
    for r in &zone.records {
        writeln!(out, "{} {} IN {}", r.owner, r.ttl, r.data.presentation())?;
        count += 1;
    }
    for (owner, certs) in names {
        let owner = owner.to_presentation();
        for der in certs.iter() {
            writeln!(
                out,
                "{owner} {} IN CERT PKIX 0 0 {}",
                zone.ttl,
                STANDARD.encode(der)
            )?;
            count += 1;
        }
    }
    Ok(count)
}
