//! `new-project DIR [NAME]`: generates a deployment crate from
//! `template-project/` into DIR, as `cargo generate --path template-project`
//! does, pointing at this checkout of batou.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dest) = args.next().map(PathBuf::from) else {
        eprintln!("usage: new-project DIR [NAME]");
        return ExitCode::from(2);
    };
    let name = args.next().unwrap_or_else(|| {
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "myproject".into())
    });
    if dest.join("Cargo.toml").exists() {
        println!("{} exists, keeping it", dest.display());
        return ExitCode::SUCCESS;
    }
    let root = batou_tests::workspace_root();
    let result = std::fs::create_dir_all(&dest)
        .and_then(|_| batou_tests::render_template(&dest, &name, &root))
        .and_then(|_| std::fs::copy(root.join("Cargo.lock"), dest.join("Cargo.lock")).map(|_| ()));
    match result {
        Ok(()) => {
            println!("generated {} in {}", name, dest.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ERROR: cannot generate {}: {e}", dest.display());
            ExitCode::from(1)
        }
    }
}
