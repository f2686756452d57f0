//! The view of the `secrets` subcommands: they return data and report
//! [`Note`]s; this prints them (batou's wording and layout) and asks
//! batou's retry question after a failed encryption.

use crate::cli::SecretsCommand;
use crate::secrets::commands::{self, Note, Retry};
use crate::secrets::SecretsError;
use std::path::Path;

/// Runs a `secrets` command and prints what it reports.
pub fn run(root: &Path, command: SecretsCommand) -> i32 {
    use SecretsCommand as C;
    let mut notes = |n: Note| match n {
        Note::Info(m) => println!("{m}"),
        Note::Warning(m) => eprintln!("WARNING: {m}"),
    };
    let result = match command {
        C::Edit {
            editor,
            environment,
            file,
        } => {
            let editor = editor
                .or_else(|| {
                    std::env::var("EDITOR")
                        .ok()
                        .filter(|e| !e.trim().is_empty())
                })
                .unwrap_or_else(|| "vi".into());
            commands::edit(
                root,
                &environment,
                file.as_deref(),
                &editor,
                &mut ask_retry,
                &mut notes,
            )
        }
        C::Summary => return print_summary(root),
        C::Add {
            keyid,
            environments,
        } => commands::add(root, &keyid, &environments, &mut notes),
        C::Remove {
            keyid,
            environments,
        } => commands::remove(root, &keyid, &environments, &mut notes),
        C::Reencrypt {
            environments,
            force,
        } => commands::reencrypt(root, &environments, force, &mut notes),
        C::Decrypttostdout { file } => match commands::decrypt_to_stdout(&file) {
            Ok(clear) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&clear).and_then(|_| out.flush());
                Ok(())
            }
            // git's textconv goes on with a placeholder.
            Err(e @ SecretsError::Decrypt { .. }) => {
                eprintln!("ERROR: {e}");
                println!("(unable to decrypt content)");
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ERROR: {e}");
            1
        }
    }
}

/// batou's prompt after a failed encryption in `secrets edit` (only on a
/// terminal; otherwise the edit is given up).
fn ask_retry(e: &SecretsError) -> Retry {
    use std::io::IsTerminal;
    eprintln!("\nAn error occurred: {e}");
    if !std::io::stdin().is_terminal() {
        eprintln!("Not on a terminal: your changes are lost.");
        return Retry::Quit;
    }
    loop {
        eprintln!("Your changes are still available. You can try:");
        eprintln!("\tedit       -- opens editor with current data again");
        eprintln!("\tencrypt    -- tries to encrypt current data again");
        eprintln!("\tquit       -- quits and loses your changes");
        eprint!("> ");
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return Retry::Quit;
        }
        match line.trim() {
            "edit" => return Retry::Edit,
            "encrypt" => return Retry::Encrypt,
            "quit" => return Retry::Quit,
            other => eprintln!("Unknown command {other:?}."),
        }
    }
}

/// `secrets summary`, in batou's layout.
fn print_summary(root: &Path) -> i32 {
    let mut code = 0;
    for env in commands::summary(root) {
        println!("{}", env.name);
        match env.state {
            Ok(None) => println!("\tNo secrets found."),
            Ok(Some((members, files))) => {
                println!("\t members");
                for m in &members {
                    println!("\t\t- {m}");
                }
                if members.is_empty() {
                    println!("\t\t(none)");
                }
                println!("\t secret files");
                for f in &files {
                    println!("\t\t- {f}");
                }
                if files.is_empty() {
                    println!("\t\t(none)");
                }
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                code = 1;
            }
        }
        println!();
    }
    code
}
