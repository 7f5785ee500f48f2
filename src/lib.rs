//! ccdir: a federated directory of S/MIME certificates and a registry of
//! signed trust policies.
//!
//! The map (who may use whom is checked by `tests/module_rules.rs`):
//!
//! | module | what it is | may use |
//! |---|---|---|
//! | [`domain`] | pure types and rules: addresses, entries, certificates, callers | nothing |
//! | [`error`] | the one error table: kinds → HTTP/LDAP/DNS/SMTP codes | nothing |
//! | [`pki`] | X.509 parsing, binding, chain validation, PKCS#7, demo CA, node keys, tokens | domain, error |
//! | [`storage`] | sea-orm over SQLite/PostgreSQL; returns domain types | domain, error |
//! | [`index`] | the Tantivy search index, a derived view of storage | domain, error |
//! | [`federation`] | signed publication logs, delegation, Merkle tree, page checks | domain, error, pki, storage |
//! | [`policy`] | signed fair-play policy events, webhook signatures | domain, error, pki, storage, federation |
//! | [`formats`] | JSON lines, CSV and LDIF readers and writers for entries | domain, error |
//! | [`core`] | the one service API every front end calls | all of the above |
//! | [`api`] | REST front end (actix-web + utoipa) | core, domain, error, config, telemetry |
//! | [`ldap`] | LDAP front end (ldap3_proto codec, rustls) | core, domain, error, config, telemetry |
//! | [`dns`] | DNS front end: CERT, SRV, SOA, AXFR, NOTIFY, zone files | core, domain, error, config, telemetry |
//! | [`bench`] | `ccdir bench …`: whole-system benchmarks | anything |
//! | [`config`], [`telemetry`], [`app`], [`cli`] | configuration, logs and metrics, assembly, command line | anything |

pub mod api;
pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod core;
pub mod dns;
pub mod domain;
pub mod error;
pub mod federation;
pub mod formats;
pub mod index;
pub mod ldap;
pub mod pki;
pub mod policy;
pub mod seed;
pub mod storage;
pub mod telemetry;
