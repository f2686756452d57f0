//! `cargo-generate`: the real cargo-generate (pinned in Cargo.toml), as its
//! own `main` runs it, for the template test.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `cargo generate ...` passes "generate" as the first argument.
    let cargo_generate::Cli::Generate(args) = cargo_generate::Cli::parse();
    match cargo_generate::generate(args) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
