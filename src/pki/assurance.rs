//! Level of assurance from certificate policy OIDs.
//!
//! Two arcs are understood (see PROTOCOLS.md §6):
//! * the Federal Bridge arc 2.16.840.1.101.3.2.1.3.x, which also holds the
//!   Common Policy OIDs .6/.7/.13/.16, and its test arc 2.16.840.1.101.3.2.1.48.x
//!   (mapped with the same table);
//! * the DirectTrust level-of-assurance arc 1.3.6.1.4.1.41179.1.N.
//!
//! Anything else maps to no level. A certificate's level is the highest one
//! any of its policies maps to.

use crate::domain::Assurance;

/// Federal Bridge production arc.
const FBCA_ARC: &str = "2.16.840.1.101.3.2.1.3.";
/// Federal Bridge test arc; same leaf numbers as production.
const FBCA_TEST_ARC: &str = "2.16.840.1.101.3.2.1.48.";
/// DirectTrust level-of-assurance arc.
const DIRECTTRUST_LOA_ARC: &str = "1.3.6.1.4.1.41179.1.";

/// FBCA (and Common Policy) leaf arc → level.
const FBCA_LEVELS: &[(u32, Assurance)] = &[
    (1, Assurance::Rudimentary),     // rudimentaryAssurance
    (2, Assurance::Basic),           // basicAssurance
    (3, Assurance::Medium),          // mediumAssurance
    (4, Assurance::High),            // highAssurance
    (6, Assurance::Medium),          // Common Policy (software)
    (7, Assurance::MediumHardware),  // Common Policy hardware
    (12, Assurance::MediumHardware), // mediumHardware
    (13, Assurance::MediumHardware), // Common Policy authentication
    (14, Assurance::Medium),         // medium-CBP
    (15, Assurance::MediumHardware), // mediumHardware-CBP
    (16, Assurance::High),           // Common Policy high
    (18, Assurance::MediumHardware), // PIV-I hardware
    (19, Assurance::MediumHardware), // PIV-I cardAuth
    (20, Assurance::MediumHardware), // PIV-I contentSigning
    (37, Assurance::Medium),         // mediumDevice
    (38, Assurance::MediumHardware), // mediumDeviceHardware
];

/// DirectTrust LoA leaf arc → level.
const DIRECTTRUST_LEVELS: &[(u32, Assurance)] = &[
    (1, Assurance::Rudimentary),
    (2, Assurance::Basic),
    (3, Assurance::Medium),
    (4, Assurance::High),
];

/// The level one policy OID (dotted form) stands for, if any.
pub fn assurance_of_policy(oid: &str) -> Option<Assurance> {
    let (rest, table) = if let Some(rest) = oid.strip_prefix(FBCA_ARC) {
        (rest, FBCA_LEVELS)
    } else if let Some(rest) = oid.strip_prefix(FBCA_TEST_ARC) {
        (rest, FBCA_LEVELS)
    } else if let Some(rest) = oid.strip_prefix(DIRECTTRUST_LOA_ARC) {
        (rest, DIRECTTRUST_LEVELS)
    } else {
        return None;
    };
    // Exactly one more arc, in canonical decimal form (no sign, no leading zero).
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = rest.parse().ok()?;
    table.iter().find(|(k, _)| *k == n).map(|(_, level)| *level)
}

/// The highest level any of the policies stands for.
pub fn assurance_of_policies<S: AsRef<str>>(policies: &[S]) -> Option<Assurance> {
    policies
        .iter()
        .filter_map(|p| assurance_of_policy(p.as_ref()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Assurance::*;

    #[test]
    fn every_table_row_maps() {
        let cases = [
            ("2.16.840.1.101.3.2.1.3.1", Some(Rudimentary)),
            ("2.16.840.1.101.3.2.1.3.2", Some(Basic)),
            ("2.16.840.1.101.3.2.1.3.3", Some(Medium)),
            ("2.16.840.1.101.3.2.1.3.4", Some(High)),
            ("2.16.840.1.101.3.2.1.3.6", Some(Medium)),
            ("2.16.840.1.101.3.2.1.3.7", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.12", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.13", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.14", Some(Medium)),
            ("2.16.840.1.101.3.2.1.3.15", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.16", Some(High)),
            ("2.16.840.1.101.3.2.1.3.18", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.19", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.20", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.3.37", Some(Medium)),
            ("2.16.840.1.101.3.2.1.3.38", Some(MediumHardware)),
            ("2.16.840.1.101.3.2.1.48.3", Some(Medium)),
            ("2.16.840.1.101.3.2.1.48.12", Some(MediumHardware)),
            ("1.3.6.1.4.1.41179.1.1", Some(Rudimentary)),
            ("1.3.6.1.4.1.41179.1.2", Some(Basic)),
            ("1.3.6.1.4.1.41179.1.3", Some(Medium)),
            ("1.3.6.1.4.1.41179.1.4", Some(High)),
        ];
        for (oid, want) in cases {
            assert_eq!(assurance_of_policy(oid), want, "{oid}");
        }
    }

    #[test]
    fn unknown_and_near_misses_map_to_none() {
        for oid in [
            "2.16.840.1.101.3.2.1.3.5",
            "2.16.840.1.101.3.2.1.3.99",
            "2.16.840.1.101.3.2.1.3.3.1",
            "2.16.840.1.101.3.2.1.3.03",
            "2.16.840.1.101.3.2.1.3.",
            "2.16.840.1.101.3.2.1.30.3",
            "1.3.6.1.4.1.41179.0.1.2",
            "1.3.6.1.4.1.41179.2.1",
            "1.3.6.1.4.1.41179.1.5",
            "2.23.140.1.5.1.2",
            "2.5.29.32.0",
            "",
        ] {
            assert_eq!(assurance_of_policy(oid), None, "{oid}");
        }
    }

    #[test]
    fn highest_level_wins() {
        let p = [
            "2.23.140.1.5.1.2",
            "1.3.6.1.4.1.41179.1.2",
            "2.16.840.1.101.3.2.1.3.12",
            "2.16.840.1.101.3.2.1.3.3",
        ];
        assert_eq!(assurance_of_policies(&p), Some(MediumHardware));
        assert_eq!(assurance_of_policies::<&str>(&[]), None);
    }
}
