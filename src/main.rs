//! The `ccdir` binary: parse the command line and hand over.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // reqwest is built without a TLS crypto provider: install ring first.
    ccdir::core::install_crypto_provider();
    ccdir::app::init_worker_pool();
    let cli = ccdir::cli::Cli::parse();
    match ccdir::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ccdir: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
