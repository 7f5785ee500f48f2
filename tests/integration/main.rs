//! The one integration test binary (STYLE principle 9): each module is a
//! suite, so the crate and its dependencies are linked once.

mod api;
mod bundles;
mod cli;
mod dns;
mod dns_tools;
mod federation;
mod ldap;
mod ldapsearch;
mod module_rules;
mod policies;
mod storage;
mod support;
