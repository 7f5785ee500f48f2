//! The `ccdir` binary: parse the command line and hand over.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One TLS provider for the whole process: ring (no aws-lc C build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = ccdir::cli::Cli::parse();
    match ccdir::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ccdir: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
