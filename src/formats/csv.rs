//! CSV: a header row naming columns, then one entry a row. Columns are the
//! [`EntryInput`] field names; `identifiers` holds `SCHEME:value` items and
//! `certificates` PEM blocks or base64 DER, both separated by `;` or
//! whitespace. Unknown columns are an error, so a misspelt header is caught
//! before anything is imported.

use std::io::BufRead;

use super::{ImportRecord, ImportRow};
use crate::domain::{EntryInput, parse_identifier};

/// Every column the reader understands.
pub const CSV_COLUMNS: &[&str] = &[
    "address",
    "kind",
    "display_name",
    "given_name",
    "surname",
    "organisation",
    "unit",
    "title",
    "profession",
    "specialty",
    "identifiers",
    "locality",
    "region",
    "country",
    "postal_code",
    "phone",
    "visibility",
    "certificates",
];

pub fn read_csv(input: impl BufRead) -> impl Iterator<Item = ImportRow> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(false)
        .trim(::csv::Trim::Headers)
        .from_reader(input);
    let header: Result<Vec<String>, String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).map(Ok).collect(),
        Err(e) => Err(format!("unreadable header: {e}")),
    };
    let header =
        header.and_then(
            |cols| match cols.iter().find(|c| !CSV_COLUMNS.contains(&c.as_str())) {
                Some(bad) => Err(format!(
                    "unknown column {bad:?}; known columns: {}",
                    CSV_COLUMNS.join(", ")
                )),
                None if !cols.iter().any(|c| c == "address") => {
                    Err("the header must have an \"address\" column".to_owned())
                }
                None => Ok(cols),
            },
        );
    let mut header_error = None;
    let columns = match header {
        Ok(c) => c,
        Err(e) => {
            header_error = Some(ImportRow {
                line: 1,
                record: Err(e),
            });
            Vec::new()
        }
    };
    let rows = (!columns.is_empty())
        .then(|| reader.into_records())
        .into_iter()
        .flatten()
        .map(move |record| match record {
            Err(e) => ImportRow {
                line: e.position().map_or(0, |p| p.line() as usize),
                record: Err(format!("unreadable row: {e}")),
            },
            Ok(rec) => ImportRow {
                line: rec.position().map_or(0, |p| p.line() as usize),
                record: row_to_entry(&columns, &rec).map(|e| ImportRecord::Entry(Box::new(e))),
            },
        });
    header_error.into_iter().chain(rows)
}

fn row_to_entry(columns: &[String], rec: &::csv::StringRecord) -> Result<EntryInput, String> {
    let mut map = serde_json::Map::new();
    let mut identifiers = Vec::new();
    let mut certificates = Vec::new();
    for (col, value) in columns.iter().zip(rec.iter()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match col.as_str() {
            "identifiers" => {
                for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    identifiers.push(parse_identifier(item).map_err(|e| e.to_string())?);
                }
            }
            "certificates" => certificates = split_certificates(value),
            _ => {
                map.insert(col.clone(), serde_json::Value::String(value.to_owned()));
            }
        }
    }
    let mut entry: EntryInput =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
    entry.identifiers = identifiers;
    entry.certificates = certificates;
    if entry.address.is_none() {
        return Err("empty address".into());
    }
    Ok(entry)
}

/// Splits a cell into certificates: whole PEM blocks, or base64 tokens.
fn split_certificates(cell: &str) -> Vec<String> {
    if cell.contains("-----BEGIN") {
        let mut out = Vec::new();
        let mut rest = cell;
        while let Some(start) = rest.find("-----BEGIN") {
            let after = &rest[start..];
            let end = after
                .find("-----END")
                .and_then(|e| after[e + 8..].find("-----").map(|t| e + 8 + t + 5))
                .unwrap_or(after.len());
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
        out
    } else {
        cell.split(|c: char| c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_with_line_numbers() {
        let text = "address,given_name,surname,identifiers,certificates\n\
                    a@x.example.org,Ann,Lee,NPI:1234567893;LOCAL:7,QUJD\n\
                    bad address,B,C,,\n";
        let rows: Vec<_> = read_csv(text.as_bytes()).collect();
        assert_eq!(rows.len(), 2);
        let Ok(ImportRecord::Entry(e)) = &rows[0].record else {
            panic!("{:?}", rows[0])
        };
        assert_eq!(e.identifiers.len(), 2);
        assert_eq!(e.certificates, vec!["QUJD".to_owned()]);
        assert_eq!(rows[1].line, 3);
        assert!(rows[1].record.is_err());
    }

    #[test]
    fn unknown_column_is_one_error() {
        let rows: Vec<_> = read_csv("address,nmae\na@x.org,x\n".as_bytes()).collect();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].record.as_ref().unwrap_err().contains("nmae"));
    }

    #[test]
    fn splits_pem_blocks() {
        let cell = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----";
        let certs = split_certificates(cell);
        assert_eq!(certs.len(), 2);
        assert!(certs[1].contains("REVG"));
    }
}
