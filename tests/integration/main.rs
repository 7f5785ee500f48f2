//! The one integration test binary (STYLE principle 9): each module is a
//! suite, so the crate and its dependencies are linked once.

mod api;
mod cli;
mod federation;
mod module_rules;
mod storage;
mod support;
