//! Keeps the module map of `src/lib.rs` true: each module may use only the
//! modules below it, and only their owners touch sea-orm, tantivy or a
//! protocol crate. Reads the source, so a forbidden `use crate::…` fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Who may use whom (besides itself).
fn allowed(module: &str) -> Option<&'static [&'static str]> {
    const FRONT_END: &[&str] = &["core", "domain", "error", "config", "telemetry"];
    Some(match module {
        "domain" | "error" => &[],
        "formats" | "pki" | "storage" | "index" => &["domain", "error"],
        "federation" => &["domain", "error", "pki", "storage"],
        // Policy events are signed with the federation's canonical encoding
        // and travel inside its log.
        "policy" => &["domain", "error", "pki", "storage", "federation"],
        "core" => &[
            "domain",
            "error",
            "pki",
            "storage",
            "index",
            "formats",
            "telemetry",
            "federation",
            "policy",
        ],
        "mail" | "acme" => &["core", "domain", "error", "config", "telemetry"],
        "api" | "ldap" | "dns" | "smtp" => FRONT_END,
        "config" => &[],
        "telemetry" => &["config"],
        // The assembly may use everything.
        "app" | "cli" | "seed" | "bench" | "lib" | "main" => return None,
        _ => return Some(&[]),
    })
}

/// External crates only one module may name.
const OWNED_CRATES: &[(&str, &[&str])] = &[
    ("sea_orm", &["storage"]),
    ("sea_orm_migration", &["storage"]),
    ("tantivy", &["index"]),
    ("ldap3_proto", &["ldap"]),
    ("ldap3_lber", &["ldap"]),
    ("hickory_server", &["dns"]),
    ("actix_web", &["api", "app"]),
    ("utoipa", &["api"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Identifiers that follow `crate::` in the text (comments included: a
/// doc link to a forbidden module is a smell too, but allowed for `//!` maps).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let ident: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                out.push(ident);
            }
            rest = after;
        }
    }
    out
}

fn names_crate(text: &str, krate: &str) -> bool {
    text.lines().any(|line| {
        let code = line.trim_start();
        !code.starts_with("//")
            && (code.contains(&format!("use {krate}")) || code.contains(&format!("{krate}::")))
            && !code.contains(&format!("_{krate}"))
    })
}

#[test]
fn modules_use_only_what_the_map_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("read file");
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .display()
            .to_string();
        if let Some(allowed) = allowed(&module) {
            for used in crate_paths(&text) {
                if used != module && !allowed.contains(&used.as_str()) {
                    violations
                        .entry(rel.clone())
                        .or_default()
                        .push(format!("crate::{used}"));
                }
            }
        }
        for (krate, owners) in OWNED_CRATES {
            if !owners.contains(&module.as_str()) && names_crate(&text, krate) {
                violations
                    .entry(rel.clone())
                    .or_default()
                    .push((*krate).to_owned());
            }
        }
    }
    assert!(
        violations.is_empty(),
        "modules using what the map in src/lib.rs does not allow them: {violations:#?}"
    );
}

#[test]
fn the_checker_catches_a_violation() {
    assert_eq!(
        crate_paths("use crate::storage::Store;\n// crate::index"),
        vec!["storage"]
    );
    assert!(names_crate("use sea_orm::Entity;", "sea_orm"));
    assert!(!names_crate("let x = my_sea_orm::y;", "sea_orm"));
    assert!(!allowed("api").unwrap().contains(&"storage"));
}
