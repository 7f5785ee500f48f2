//! JSON lines: one object a line. Entry rows have the fields of
//! [`EntryInput`]; organisation rows carry `"type": "organisation"` and the
//! fields of [`OrganisationInput`]. Blank lines and lines starting with `#`
//! are skipped.

use std::io::{self, BufRead, Write};

use serde_json::Value;

use super::{ImportRecord, ImportRow};
use crate::domain::{EntryInput, OrganisationInput};

pub fn read_jsonl(input: impl BufRead) -> impl Iterator<Item = ImportRow> {
    input.lines().enumerate().filter_map(|(i, line)| {
        let line_no = i + 1;
        let record = match line {
            Err(e) => Err(format!("unreadable line: {e}")),
            Ok(text) => {
                let text = text.trim();
                if text.is_empty() || text.starts_with('#') {
                    return None;
                }
                parse_line(text)
            }
        };
        Some(ImportRow {
            line: line_no,
            record,
        })
    })
}

fn parse_line(text: &str) -> Result<ImportRecord, String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "expected a JSON object".to_owned())?;
    let kind = match object.remove("type") {
        None => "entry".to_owned(),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("\"type\" must be a string, not {other}")),
    };
    match kind.as_str() {
        "entry" => serde_json::from_value::<EntryInput>(value)
            .map(|e| ImportRecord::Entry(Box::new(e)))
            .map_err(|e| e.to_string()),
        "organisation" | "organization" => serde_json::from_value::<OrganisationInput>(value)
            .map(ImportRecord::Organisation)
            .map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown \"type\" {other:?}: use entry or organisation"
        )),
    }
}

pub fn write_jsonl_entry(out: &mut impl Write, entry: &EntryInput) -> io::Result<()> {
    serde_json::to_writer(&mut *out, entry)?;
    out.write_all(b"\n")
}

pub fn write_jsonl_organisation(out: &mut impl Write, org: &OrganisationInput) -> io::Result<()> {
    let mut value = serde_json::to_value(org)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("type".into(), Value::String("organisation".into()));
    }
    serde_json::to_writer(&mut *out, &value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_and_reports_bad_lines() {
        let text = r#"{"type":"organisation","id":"acme","name":"Acme Clinic","domains":["acme.example.org"]}
# a comment

{"address":"a@acme.example.org","given_name":"Ann","surname":"Lee","organisation":"acme"}
{"address":"not an address"}
{"address":"b@acme.example.org","bogus":1}
[1,2]
"#;
        let rows: Vec<_> = read_jsonl(text.as_bytes()).collect();
        assert_eq!(rows.len(), 5);
        assert!(matches!(rows[0].record, Ok(ImportRecord::Organisation(_))));
        assert!(matches!(rows[1].record, Ok(ImportRecord::Entry(_))));
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[2].line, 5);
        assert!(
            rows[2]
                .record
                .as_ref()
                .unwrap_err()
                .contains("invalid domain")
        );
        assert!(
            rows[3]
                .record
                .as_ref()
                .unwrap_err()
                .contains("unknown field `bogus`")
        );
        assert!(rows[4].record.as_ref().unwrap_err().contains("object"));
    }

    #[test]
    fn round_trips() {
        let org = OrganisationInput {
            id: Some("acme".parse().unwrap()),
            name: "Acme".into(),
            ..Default::default()
        };
        let entry = EntryInput {
            address: Some("a@acme.example.org".parse().unwrap()),
            display_name: Some("Ann Lee".into()),
            identifiers: vec![crate::domain::parse_identifier("NPI:1234567893").unwrap()],
            ..Default::default()
        };
        let mut buf = Vec::new();
        write_jsonl_organisation(&mut buf, &org).unwrap();
        write_jsonl_entry(&mut buf, &entry).unwrap();
        let rows: Vec<_> = read_jsonl(buf.as_slice()).collect();
        assert_eq!(rows[0].record, Ok(ImportRecord::Organisation(org)));
        assert_eq!(rows[1].record, Ok(ImportRecord::Entry(Box::new(entry))));
    }
}
