//! Secrets end to end, with keys made by the real `gpg` and `ssh-keygen`:
//! a fixture in batou's layout deploys its overrides, host data and secret
//! files; `secrets edit/summary/add/remove/reencrypt/decrypttostdout`;
//! age without an age binary; age-diffable; the lock; errors; and no
//! cleartext left on any disk.

use batou_tests::gpg::GnuPg;
use batou_tests::*;
use std::path::Path;
use std::process::{Command, Output};

const COMPONENTS: &str = r##"
use batou::prelude::*;
use batou::secrets::Secret;
use batou_stdlib::file::File;

#[component]
pub struct Tick {
    #[attribute(default = 1)]
    sleep: u64,
}

impl Component for Tick {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("tick.sh").mode("rwxr-xr-x"));
        Ok(())
    }
}

#[component]
pub struct App {
    #[attribute(default = "nobody")]
    user: String,
    #[attribute(default = "")]
    password: Secret<String>,
    #[attribute(default = 1)]
    workers: u16,
}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("app.conf"));
        let cert = cx.secret_file("cert").unwrap_or("none\n").to_string();
        cx.add(File::new("cert.pem").content(cert));
        cx.log(format!("app configured with {:?}", self.password));
        Ok(())
    }
}
"##;

const TEMPLATE: &str = "user = {{ component.user }}\npassword = {{ component.password }}\n\
role = {{ host.data.role }}\n";

const PASSWORD: &str = "s3cr3t-Pa55word";
const CERT_LINE: &str = "MIIBkTCB+wIJAKHHIG...secretcertline";

/// A project with the `App` component and an environment `prod`.
fn project(name: &str) -> Project {
    let p = Project::generate(name);
    p.write("components/tick/component.rs", COMPONENTS);
    p.write("components/tick/app.conf", TEMPLATE);
    p.write(
        "environments/prod/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = app\n\n\
         [host:localhost]\ndata-role = none\n\n[component:app]\nuser = alice\n",
    );
    // host data from environment.cfg and from secrets: the secret wins.
    p.write(
        "environments/prod/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = app\n\n[component:app]\nuser = alice\n",
    );
    p.build_ok();
    p
}

fn secrets_text(members: &str, provider: &str) -> String {
    format!(
        "[batou]\nmembers = {members}\nsecret_provider = {provider}\n\n\
         [component:app]\npassword = {PASSWORD}\n\n[host:localhost]\ndata-role = db-primary\n"
    )
}

/// Every file below `dir` (except those under `except`) that contains
/// `needle`.
fn files_containing(dir: &Path, needle: &str, except: &[&Path]) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .filter(|(rel, data, _)| {
            !except.iter().any(|e| dir.join(rel).starts_with(e))
                && data.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .map(|(rel, _, _)| rel.display().to_string())
        .collect()
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run the deployment executable")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed:\n{}{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// An ssh key pair (ed25519, optionally with a passphrase): (private key
/// path, public key line).
fn ssh_key(dir: &Path, name: &str, passphrase: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// An EDITOR that replaces the file's text with `text`.
fn editor_writing(dir: &Path, name: &str, text: &str) -> String {
    let content = dir.join(format!("{name}.txt"));
    std::fs::write(&content, text).unwrap();
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat '{}' > \"$1\"\n", content.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[test]
fn gpg_fixture_in_batous_layout_deploys_and_leaks_nothing() {
    let gpg = GnuPg::new();
    gpg.generate("Alice <alice@example.com>", None);
    let p = project("secrets-gpg");
    // The fixture, made by real gpg as batou users have it.
    std::fs::write(
        p.path.join("environments/prod/secrets.cfg.gpg"),
        gpg.encrypt(
            &["alice@example.com"],
            &secrets_text("alice@example.com", "gpg"),
        ),
    )
    .unwrap();
    std::fs::write(
        p.path.join("environments/prod/secret-cert.gpg"),
        gpg.encrypt(
            &["alice@example.com"],
            &format!("-----BEGIN-----\n{CERT_LINE}\n-----END-----\n"),
        ),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let batou = |args: &[&str]| {
        let mut c = p.command(args);
        c.env("GNUPGHOME", gpg.home()).env("TMPDIR", tmp.path());
        run(&mut c)
    };

    let check = ok(&batou(&["deploy", "-c", "prod"]));
    assert!(check.contains("🔑 main: Loading secrets ..."), "{check}");
    let out = batou(&["deploy", "prod"]);
    let text = ok(&out) + &stderr(&out);
    assert_eq!(
        p.read("work/app/app.conf"),
        format!("user = alice\npassword = {PASSWORD}\nrole = db-primary\n")
    );
    assert!(p.read("work/app/cert.pem").contains(CERT_LINE));
    assert!(text.contains("app configured with Secret(***)"), "{text}");
    assert!(
        text.contains("Not showing diff as it contains sensitive data."),
        "{text}"
    );
    assert!(
        !text.contains(PASSWORD) && !text.contains(CERT_LINE),
        "{text}"
    );

    // --json carries no secret either.
    let json = batou(&["deploy", "--json", "-P", "prod"]);
    assert!(!stdout(&json).contains(PASSWORD), "{}", stdout(&json));

    // No cleartext anywhere but in the deployed files.
    let deployed = [
        p.path.join("work/app/app.conf"),
        p.path.join("work/app/cert.pem"),
    ];
    let except: Vec<&Path> = deployed.iter().map(|d| d.as_path()).collect();
    for needle in [PASSWORD, CERT_LINE] {
        assert_eq!(
            files_containing(&p.path, needle, &except),
            Vec::<String>::new()
        );
        assert_eq!(
            files_containing(tmp.path(), needle, &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            files_containing(Path::new("/dev/shm"), needle, &[]),
            Vec::<String>::new()
        );
    }

    // decrypttostdout, for git's textconv; summary.
    let clear = ok(&batou(&[
        "secrets",
        "decrypttostdout",
        "environments/prod/secrets.cfg.gpg",
    ]));
    assert_eq!(clear, secrets_text("alice@example.com", "gpg"));
    let summary = ok(&batou(&["secrets", "summary"]));
    assert!(
        summary
            .contains("prod\n\t members\n\t\t- alice@example.com\n\t secret files\n\t\t- cert\n\n"),
        "{summary}"
    );
    assert!(
        summary.contains("local\n\tNo secrets found.\n"),
        "{summary}"
    );
}

#[test]
fn gpg_edit_add_remove_and_a_key_only_the_agent_holds() {
    let gpg = GnuPg::new();
    let alice = gpg.generate("Alice <alice@example.com>", Some("alice pass"));
    let bob = gpg.generate("Bob <bob@example.com>", None);
    gpg.preset("alice@example.com", "alice pass");
    let p = project("secrets-gpg-edit");
    let work = tempfile::tempdir().unwrap();
    let batou = |args: &[&str], editor: Option<&str>| {
        let mut c = p.command(args);
        c.env("GNUPGHOME", gpg.home()).env("TMPDIR", work.path());
        if let Some(e) = editor {
            c.env("EDITOR", e);
        }
        run(&mut c)
    };
    // A new environment's secrets, written by a scripted editor: gpg.
    let editor = editor_writing(
        work.path(),
        "ed1",
        &secrets_text("alice@example.com", "gpg"),
    );
    let out = ok(&batou(&["secrets", "edit", "prod"], Some(&editor)));
    assert!(
        out.contains("Encrypted environments/prod/secrets.cfg.gpg."),
        "{out}"
    );
    let file = p.path.join("environments/prod/secrets.cfg.gpg");
    assert!(!p.path.join("environments/prod/secrets.cfg.age").exists());
    // gpg decrypts what we encrypted (Alice's key unlocked in the agent).
    let dec = gpg.decrypt(&std::fs::read(&file).unwrap());
    assert_eq!(
        String::from_utf8_lossy(&dec.stdout),
        secrets_text("alice@example.com", "gpg")
    );
    ok(&batou(&["deploy", "prod"], None));
    assert!(p.read("work/app/app.conf").contains(PASSWORD));

    // Unchanged text is not re-encrypted.
    let before = std::fs::read(&file).unwrap();
    let out = ok(&batou(&["secrets", "edit", "prod"], Some("true")));
    assert!(
        out.contains("No changes from original cleartext. Not updating."),
        "{out}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // A secret file, then Bob as a member: he can decrypt both.
    let ed2 = editor_writing(work.path(), "ed2", &format!("{CERT_LINE}\n"));
    ok(&batou(&["secrets", "edit", "prod", "cert"], Some(&ed2)));
    let out = ok(&batou(
        &[
            "secrets",
            "add",
            "bob@example.com",
            "--environments",
            "prod",
        ],
        None,
    ));
    assert!(
        out.contains("prod: members are now alice@example.com, bob@example.com"),
        "{out}"
    );
    gpg.forget_passphrases(); // Alice's key is locked again: only Bob's works.
    for f in ["secrets.cfg.gpg", "secret-cert.gpg"] {
        let out = batou(
            &[
                "secrets",
                "decrypttostdout",
                &format!("environments/prod/{f}"),
            ],
            None,
        );
        assert!(
            !stdout(&out).contains("unable to decrypt"),
            "{f}: {}",
            stderr(&out)
        );
    }
    // Remove Bob: re-encrypted to Alice only; Bob can no longer decrypt.
    gpg.preset("alice@example.com", "alice pass");
    ok(&batou(&["secrets", "remove", "bob@example.com"], None));
    gpg.forget_passphrases();
    let out = batou(
        &[
            "secrets",
            "decrypttostdout",
            "environments/prod/secret-cert.gpg",
        ],
        None,
    );
    assert_eq!(stdout(&out), "(unable to decrypt content)\n");
    let err = stderr(&out);
    assert!(
        err.contains(&alice[alice.len() - 16..]) || err.contains("Alice"),
        "{err}"
    );
    assert!(!err.contains(&bob[bob.len() - 16..]), "{err}");

    // A deployment that cannot decrypt: a clear error, nothing changed.
    std::fs::remove_dir_all(p.path.join("work")).unwrap();
    let before = snapshot(&p.path);
    let out = batou(&["deploy", "prod"], None);
    assert!(!out.status.success());
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("Cannot load secrets"), "{text}");
    assert!(
        text.contains("Cannot decrypt environments/prod/secrets.cfg.gpg: gpg:"),
        "{text}"
    );
    assert!(text.contains("(Alice <alice@example.com>)"), "{text}");
    assert_eq!(snapshot(&p.path), before);
    assert!(!p.path.join("work/app").exists());
    for needle in [PASSWORD, CERT_LINE] {
        assert_eq!(
            files_containing(
                work.path(),
                needle,
                &[
                    work.path().join("ed1.txt").as_path(),
                    work.path().join("ed2.txt").as_path()
                ]
            ),
            Vec::<String>::new()
        );
    }
}

#[test]
fn age_without_an_age_binary_edit_deploy_members_and_diffable() {
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_pub) = ssh_key(keys.path(), "alice", "");
    let (bob_key, bob_pub) = ssh_key(keys.path(), "bob", "bob pass");
    let p = project("secrets-age");
    let work = tempfile::tempdir().unwrap();
    let batou = |args: &[&str], identity: &Path, editor: Option<&str>| {
        let mut c = p.command(args);
        c.env("BATOU_AGE_IDENTITIES", identity)
            .env("BATOU_AGE_IDENTITY_PASSPHRASE", "bob pass")
            .env("TMPDIR", work.path())
            .env("PATH", "/usr/bin:/bin");
        if let Some(e) = editor {
            c.env("EDITOR", e);
        }
        run(&mut c)
    };
    assert!(
        Command::new("sh")
            .args(["-c", "PATH=/usr/bin:/bin command -v age || command -v rage"])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "an age binary is installed"
    );

    let editor = editor_writing(work.path(), "ed", &secrets_text(&alice_pub, "age"));
    let out = batou(&["secrets", "edit", "prod"], &alice_key, Some(&editor));
    let text = ok(&out);
    assert!(
        stderr(&out)
            .contains("WARNING: The age encryption public-key metadata file does not exist!"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.contains("Encrypted environments/prod/secrets.cfg.age."),
        "{text}"
    );
    let keys_txt = p.read("environments/prod/age_keys.txt");
    assert!(keys_txt.starts_with("###########################################\n# This file is automatically generated by #\n"), "{keys_txt}");
    assert!(
        keys_txt.ends_with(&format!("# plain ssh public key\n{alice_pub}\n")),
        "{keys_txt}"
    );
    ok(&batou(&["deploy", "prod"], &alice_key, None));
    assert!(p.read("work/app/app.conf").contains(PASSWORD));

    // Bob (a passphrase-protected key) cannot decrypt until added.
    let out = batou(&["deploy", "-c", "prod"], &bob_key, None);
    assert!(!out.status.success());
    let err = stdout(&out) + &stderr(&out);
    assert!(
        err.contains("Cannot decrypt environments/prod/secrets.cfg.age: none of the identities"),
        "{err}"
    );
    assert!(err.contains("age_keys.txt: ssh-ed25519"), "{err}");
    ok(&batou(
        &["secrets", "add", &bob_pub, "--environments", "prod"],
        &alice_key,
        None,
    ));
    ok(&batou(&["deploy", "-c", "prod"], &bob_key, None));
    ok(&batou(&["secrets", "remove", &bob_pub], &alice_key, None));
    assert!(!batou(&["deploy", "-c", "prod"], &bob_key, None)
        .status
        .success());
    ok(&batou(&["deploy", "-c", "prod"], &alice_key, None));

    // Converted to age-diffable: one line per value, unchanged values keep
    // their ciphertext.
    let diffable = format!(
        "[batou]\nmembers = {alice_pub}\nsecret_provider = age-diffable\n\n\
         [component:app]\npassword = {PASSWORD}\nworkers = 4\n\n[host:localhost]\ndata-role = db\n"
    );
    let ed = editor_writing(work.path(), "ed3", &diffable);
    ok(&batou(&["secrets", "edit", "prod"], &alice_key, Some(&ed)));
    assert!(!p.path.join("environments/prod/secrets.cfg.age").exists());
    let v1 = p.read("environments/prod/secrets.cfg.age-diffable");
    assert!(
        v1.starts_with(&format!(
            "[batou]\nmembers = {alice_pub}\nsecret_provider = age-diffable\n"
        )),
        "{v1}"
    );
    assert!(!v1.contains(PASSWORD));
    let ed = editor_writing(
        work.path(),
        "ed4",
        &diffable.replace("workers = 4", "workers = 8"),
    );
    ok(&batou(&["secrets", "edit", "prod"], &alice_key, Some(&ed)));
    let v2 = p.read("environments/prod/secrets.cfg.age-diffable");
    let changed: Vec<(&str, &str)> = v1.lines().zip(v2.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("workers = "), "{changed:?}");
    let clear = ok(&batou(
        &[
            "secrets",
            "decrypttostdout",
            "environments/prod/secrets.cfg.age-diffable",
        ],
        &alice_key,
        None,
    ));
    assert!(
        clear.contains("workers = 8\n") && clear.contains(PASSWORD),
        "{clear}"
    );
    ok(&batou(&["deploy", "prod"], &alice_key, None));
    let summary = ok(&batou(&["secrets", "summary"], &bob_key, None));
    assert!(
        summary.contains(&format!(
            "prod\n\t members\n\t\t- {alice_pub}\n\t secret files\n\t\t(none)\n"
        )),
        "{summary}"
    );

    // No cleartext left in $TMPDIR or /dev/shm.
    let inputs: Vec<std::path::PathBuf> = ["ed.txt", "ed3.txt", "ed4.txt"]
        .iter()
        .map(|n| work.path().join(n))
        .collect();
    let except: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    assert_eq!(
        files_containing(work.path(), PASSWORD, &except),
        Vec::<String>::new()
    );
    assert_eq!(
        files_containing(Path::new("/dev/shm"), PASSWORD, &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        files_containing(&p.path, PASSWORD, &[p.path.join("work").as_path()]),
        Vec::<String>::new()
    );
}
