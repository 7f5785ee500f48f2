//! File formats for bulk import and export of the directory: JSON lines,
//! CSV and LDIF (RFC 2849). Readers yield one [`ImportRow`] per record with
//! the line it started on, so a bad row is reported precisely and the rest
//! can still be read; writers produce files the readers take back.

mod csv;
mod jsonl;
mod ldif;

use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

use crate::domain::{EntryInput, OrganisationInput};

pub use self::csv::{CSV_COLUMNS, read_csv};
pub use self::jsonl::{read_jsonl, write_jsonl_entry, write_jsonl_organisation};
pub use self::ldif::{LdifTree, read_ldif, write_ldif_entry, write_ldif_organisation};

/// One record of an import file.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRecord {
    Organisation(OrganisationInput),
    Entry(Box<EntryInput>),
}

/// A record, or why it could not be read, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: usize,
    pub record: Result<ImportRecord, String>,
}

/// The formats `import` reads and `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line; `"type":"organisation"` rows define organisations.
    Jsonl,
    /// A header row naming columns (see [`CSV_COLUMNS`]); entries only.
    Csv,
    /// LDAP Data Interchange Format, `inetOrgPerson` and `organization` records.
    Ldif,
}

impl Format {
    /// Guesses the format from a file name's extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "ldif" => Some(Format::Ldif),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "ldif" => Ok(Format::Ldif),
            _ => Err(format!("unknown format {s:?}: use jsonl, csv or ldif")),
        }
    }
}

/// Reads every row of `input` in `format`.
pub fn read(
    format: Format,
    input: impl BufRead + Send + 'static,
) -> Box<dyn Iterator<Item = ImportRow> + Send> {
    match format {
        Format::Jsonl => Box::new(read_jsonl(input)),
        Format::Csv => Box::new(read_csv(input)),
        Format::Ldif => Box::new(read_ldif(input)),
    }
}
