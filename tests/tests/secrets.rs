//! Secrets end to end, with keys made by the real `gpg` and `ssh-keygen`:
//! a fixture in batou's layout deploys its overrides, host data and secret
//! files; `secrets edit/summary/add/remove/reencrypt/decrypttostdout`;
//! age without an age binary; age-diffable; the lock; errors; and no
//! cleartext left on any disk.

#[path = "../../batou-stdlib/tests/common/mod.rs"]
mod common;

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
        if cx.secret_file("cert").is_some() {
            cx.add(File::new("certinfo.txt"));
        }
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
        "components/tick/certinfo.txt",
        "{{ environment.secret_files.cert | length }} bytes\n{{ environment.secret_files.cert }}",
    );
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
    let info = p.read("work/app/certinfo.txt");
    assert!(
        info.starts_with("66 bytes\n") && info.contains(CERT_LINE),
        "{info}"
    );
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
        p.path.join("work/app/certinfo.txt"),
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

    // reencrypt: nothing to do while the keys are the same, unless forced.
    let file = p.path.join("environments/prod/secrets.cfg.age");
    let before = std::fs::read(&file).unwrap();
    ok(&batou(
        &["secrets", "reencrypt", "--environments", "prod"],
        &alice_key,
        None,
    ));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    ok(&batou(&["secrets", "reencrypt", "-f"], &alice_key, None));
    assert_ne!(std::fs::read(&file).unwrap(), before);
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

/// A project with age secrets for Alice's key; returns the project, the
/// key and its public line.
fn age_project(name: &str, keys: &Path) -> (Project, std::path::PathBuf, String) {
    let (key, public) = ssh_key(keys, "alice", "");
    (project(name), key, public)
}

fn age_cmd(p: &Project, key: &Path, tmp: &Path, args: &[&str]) -> Command {
    let mut c = p.command(args);
    c.env("BATOU_AGE_IDENTITIES", key).env("TMPDIR", tmp);
    c
}

#[test]
fn secrets_are_checked_like_the_environment() {
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-checks", keys.path());
    let batou = |args: &[&str], editor: Option<&str>| {
        let mut c = age_cmd(&p, &key, keys.path(), args);
        if let Some(e) = editor {
            c.env("EDITOR", e);
        }
        run(&mut c)
    };
    let bad = format!(
        "[batou]\nmembers = {public}\nsecret_provider = age\n\n[component:nosuch]\nx = 1\n\n\
         [host:nohost]\ndata-a = b\n\n[component:app]\nuser = bob\npassword = {PASSWORD}\n"
    );
    let ed = editor_writing(keys.path(), "bad", &bad);
    ok(&batou(&["secrets", "edit", "prod"], Some(&ed)));
    let out = batou(&["deploy", "-c", "prod"], None);
    assert!(!out.status.success());
    let text = stdout(&out);
    for expected in [
        "ERROR: Secrets section for unknown component\n      Component: nosuch\n       Location: environments/prod/secrets.cfg.age:5 (decrypted)",
        "ERROR: Secrets section for unknown host\n           Host: nohost\n       Location: environments/prod/secrets.cfg.age:8 (decrypted)",
        "ERROR: Attribute set in both the secrets and the environment\n      Component: app\n      Attribute: user\n        Secrets: environments/prod/secrets.cfg.age:12 (decrypted)\n        Also at: environments/prod/environment.cfg:8",
    ] {
        assert!(text.contains(expected), "missing:\n{expected}\nin:\n{text}");
    }
    assert!(!text.contains(PASSWORD), "{text}");

    // An attribute the component does not have, and a value that does not
    // convert (not shown: it is a secret).
    let bad = format!(
        "[batou]\nmembers = {public}\n\n[component:app]\ncolour = blue\nworkers = {PASSWORD}\n"
    );
    let ed = editor_writing(keys.path(), "bad2", &bad);
    ok(&batou(&["secrets", "edit", "prod"], Some(&ed)));
    let text = stdout(&batou(&["deploy", "-c", "prod"], None));
    assert!(
        text.contains("ERROR: Overrides for undefined attributes"),
        "{text}"
    );
    assert!(text.contains("Attributes: colour"), "{text}");
    assert!(
        text.contains("environments/prod/secrets.cfg.age:6 (decrypted)"),
        "{text}"
    );
    assert!(
        text.contains("invalid value for type u16 (from the secrets, not shown)"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // Two secrets files; an unknown kind; a secret file without config.
    std::fs::write(p.path.join("environments/prod/secrets.cfg.gpg"), b"x").unwrap();
    let text = stdout(&batou(&["deploy", "-c", "prod"], None));
    assert!(
        text.contains("Multiple secrets files in environments/prod: secrets.cfg.age, secrets.cfg.gpg. Keep exactly one."),
        "{text}"
    );
    std::fs::rename(
        p.path.join("environments/prod/secrets.cfg.gpg"),
        p.path.join("environments/prod/secrets.cfg.gpg.old"),
    )
    .unwrap();
    let text = stdout(&batou(&["deploy", "-c", "prod"], None));
    assert!(
        text.contains("environments/prod/secrets.cfg.gpg.old: unknown kind of secrets file"),
        "{text}"
    );
    std::fs::remove_file(p.path.join("environments/prod/secrets.cfg.gpg.old")).unwrap();
    let out = batou(&["secrets", "edit", "local", "cert"], Some("true"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "ERROR: Cannot edit secret files for environment local without secret configuration"
        ),
        "{}",
        stderr(&out)
    );
    let out = batou(
        &["secrets", "add", "x", "--environments", "prod,nope"],
        None,
    );
    assert_eq!(
        stderr(&out),
        "ERROR: Unknown environment(s): nope; existing environments: local, prod\n"
    );
    let out = batou(&["secrets", "edit", "nope"], Some("true"));
    assert_eq!(
        stderr(&out),
        "ERROR: Unknown environment \"nope\"; existing environments: local, prod\n"
    );
    // No members: refused, nothing written.
    let before = std::fs::read(p.path.join("environments/prod/secrets.cfg.age")).unwrap();
    let ed = editor_writing(
        keys.path(),
        "nomembers",
        "[batou]\nmembers =\n[component:app]\nuser = x\n",
    );
    let out = batou(&["secrets", "edit", "prod"], Some(&ed));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no members: list at least one key in `members` of [batou]"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("Not on a terminal: your changes are lost."),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(p.path.join("environments/prod/secrets.cfg.age")).unwrap(),
        before
    );
    // http:// key URLs are refused, unknown members ignored with a warning.
    let ed = editor_writing(
        keys.path(),
        "http",
        &format!("[batou]\nmembers = {public}, http://example.com/keys\n"),
    );
    let out = batou(&["secrets", "edit", "prod"], Some(&ed));
    assert!(
        stderr(&out)
            .contains("Downloading public keys over http is insecure! (http://example.com/keys)"),
        "{}",
        stderr(&out)
    );
    let ed = editor_writing(
        keys.path(),
        "unknown",
        &format!("[batou]\nmembers = {public}, carol\n"),
    );
    let out = batou(&["secrets", "edit", "prod"], Some(&ed));
    ok(&out);
    assert!(
        stderr(&out).contains("WARNING: Unknown key type for carol\nWill be ignored!"),
        "{}",
        stderr(&out)
    );
}

/// An EDITOR that records where its file is, signals that it runs, and
/// waits for `release` before writing `text`.
fn waiting_editor(dir: &Path, text: &str) -> String {
    let content = dir.join("waiting.txt");
    std::fs::write(&content, text).unwrap();
    let script = dir.join("waiting-editor");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > '{d}/editor.pid'\nstat -c '%a %U %n' \"$1\" \"$(dirname \"$1\")\" > '{d}/scratch.txt'\n\
             touch '{d}/started'\nwhile [ ! -e '{d}/release' ]; do sleep 0.05; done\ncat '{}' > \"$1\"\n",
            content.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[test]
fn edit_is_locked_private_and_cleaned_up_on_signals() {
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-lock", keys.path());
    let first_text = secrets_text(&public, "age");
    let ed = waiting_editor(keys.path(), &first_text);
    let first = age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"])
        .env("EDITOR", &ed)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&keys.path().join("started"), "the editor start");
    // The cleartext is in a 0600 file in a 0700 directory in memory.
    let scratch = std::fs::read_to_string(keys.path().join("scratch.txt")).unwrap();
    let lines: Vec<&str> = scratch.lines().collect();
    assert!(
        lines[0].starts_with("600 ") && lines[0].contains(" /dev/shm/batou-secrets-"),
        "{scratch}"
    );
    assert!(lines[0].ends_with("/edit.cfg"), "{scratch}");
    assert!(lines[1].starts_with("700 "), "{scratch}");
    // A second edit of the same environment is refused.
    let second =
        run(age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"]).env("EDITOR", "true"));
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        stderr(&second),
        "ERROR: File already locked: environments/prod/secrets.cfg.age (another batou secrets command is using it)\n"
    );
    std::fs::write(keys.path().join("release"), "").unwrap();
    let out = first.wait_with_output().unwrap();
    ok(&out);
    let scratch_file = lines[0].rsplit(' ').next().unwrap();
    assert!(!Path::new(scratch_file).exists());
    assert!(!Path::new(scratch_file).parent().unwrap().exists());

    // Killed while the editor runs: the cleartext file is removed.
    std::fs::remove_file(keys.path().join("release")).unwrap();
    std::fs::remove_file(keys.path().join("started")).unwrap();
    let mut victim = age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"])
        .env("EDITOR", &ed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&keys.path().join("started"), "the editor start");
    let scratch = std::fs::read_to_string(keys.path().join("scratch.txt")).unwrap();
    let file = scratch
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(Path::new(&file).exists());
    // SAFETY: signals a child process of this test.
    unsafe { libc::kill(victim.id() as i32, libc::SIGTERM) };
    let status = victim.wait().unwrap();
    assert!(!status.success());
    let editor_pid: i32 = std::fs::read_to_string(keys.path().join("editor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: ends the stand-in editor the killed run left behind.
    unsafe { libc::kill(editor_pid, libc::SIGKILL) };
    assert!(!Path::new(&file).exists(), "{file} is still there");
    assert!(!Path::new(&file).parent().unwrap().exists());
    assert_eq!(
        files_containing(Path::new("/dev/shm"), PASSWORD, &[]),
        Vec::<String>::new()
    );
    // The edit before the kill stands; the lock is free again.
    ok(&run(&mut age_cmd(
        &p,
        &key,
        keys.path(),
        &["deploy", "-c", "prod"],
    )));
}

/// A `secrets edit` of secrets that exist already holds its lock while its
/// editor runs: reading the file does not release it (it did, with classic
/// `fcntl` locks), a second edit is refused, and the first one's text is
/// saved. A Python batou holding `fcntl.lockf` on the file is respected too.
#[test]
fn a_second_edit_of_existing_secrets_is_refused_also_while_python_batou_holds_them() {
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-lock-existing", keys.path());
    let ed = editor_writing(keys.path(), "create", &secrets_text(&public, "age"));
    ok(&run(age_cmd(
        &p,
        &key,
        keys.path(),
        &["secrets", "edit", "prod"],
    )
    .env("EDITOR", &ed)));
    let changed = secrets_text(&public, "age").replace(PASSWORD, "the-first-edit-wins");
    let waiting = waiting_editor(keys.path(), &changed);
    let first = age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"])
        .env("EDITOR", &waiting)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&keys.path().join("started"), "the editor start");
    let late = editor_writing(keys.path(), "late", &secrets_text(&public, "age"));
    let first_edit_stands = || {
        let args = [
            "secrets",
            "decrypttostdout",
            "environments/prod/secrets.cfg.age",
        ];
        let shown = ok(&run(&mut age_cmd(&p, &key, keys.path(), &args)));
        assert!(shown.contains("password = the-first-edit-wins"), "{shown}");
    };
    let second =
        run(age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"]).env("EDITOR", &late));
    assert_eq!(second.status.code(), Some(1), "{}", stdout(&second));
    assert_eq!(
        stderr(&second),
        "ERROR: File already locked: environments/prod/secrets.cfg.age (another batou secrets command is using it)\n"
    );
    std::fs::write(keys.path().join("release"), "").unwrap();
    ok(&first.wait_with_output().unwrap());
    first_edit_stands();

    // Python batou's lock: `fcntl.lockf` held by another process.
    let held = keys.path().join("python-holds");
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl, sys, time, pathlib\n\
             f = open(sys.argv[1], 'r+')\n\
             fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
             pathlib.Path(sys.argv[2]).touch()\n\
             time.sleep(60)\n",
        )
        .arg(p.path.join("environments/prod/secrets.cfg.age"))
        .arg(&held)
        .spawn()
        .expect("run python3");
    wait_for(&held, "python3 holding the lock");
    let refused =
        run(age_cmd(&p, &key, keys.path(), &["secrets", "edit", "prod"]).env("EDITOR", &late));
    let _ = python.kill();
    let _ = python.wait();
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("File already locked: environments/prod/secrets.cfg.age"),
        "{}",
        stderr(&refused)
    );
    first_edit_stands();
}

#[test]
fn secrets_reach_a_remote_host_only_in_the_rendered_file() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["s1"]) else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-remote", keys.path());
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\n\n[hosts]\ns1 = app\n\n[component:app]\nuser = alice\n",
    );
    let text = secrets_text(&public, "age").replace("[host:localhost]", "[host:s1]");
    let ed = editor_writing(keys.path(), "remote", &text);
    ok(&run(age_cmd(
        &p,
        &key,
        keys.path(),
        &["secrets", "edit", "remote"],
    )
    .env("EDITOR", &ed)));
    let out = ok(&run(&mut age_cmd(
        &p,
        &key,
        keys.path(),
        &["deploy", "remote"],
    )));
    assert!(!out.contains(PASSWORD), "{out}");
    let host = &lab.hosts[0];
    let conf = host.path("deployment/work/app/app.conf");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        format!("user = alice\npassword = {PASSWORD}\nrole = db-primary\n")
    );
    // The shipped project holds only ciphertext; nothing else on the host
    // has the secret.
    assert!(host
        .path("deployment/environments/remote/secrets.cfg.age")
        .exists());
    assert_eq!(
        files_containing(&host.home, PASSWORD, &[conf.as_path()]),
        Vec::<String>::new()
    );
}

#[test]
fn age_members_from_an_https_key_list() {
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-https", keys.path());
    let (_, other) = ssh_key(keys.path(), "zed", "");
    let d = keys.path();
    // Served over TLS with a certificate from a CA made by openssl.
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(
        www.join("keys.txt"),
        format!("# team keys\n{other}\n{public}\n"),
    )
    .unwrap();
    let pki = d.join("pki");
    std::fs::create_dir(&pki).unwrap();
    let (server, ca) = common::HttpServer::start_tls(&www, &pki);
    let url = server.url("files/keys.txt");
    let ed = editor_writing(d, "https", &secrets_text(&url, "age"));
    let out = run(age_cmd(&p, &key, d, &["secrets", "edit", "prod"])
        .env("EDITOR", &ed)
        .env("SSL_CERT_FILE", &ca));
    ok(&out);
    let mut sorted = [other.clone(), public.clone()];
    sorted.sort();
    assert!(
        p.read("environments/prod/age_keys.txt").ends_with(&format!(
            "# ssh key file from {url}\n{}\n{}\n",
            sorted[0], sorted[1]
        )),
        "{}",
        p.read("environments/prod/age_keys.txt")
    );
    ok(&run(&mut age_cmd(&p, &key, d, &["deploy", "-c", "prod"])));
    // Without the CA, the server is not trusted: a clear error.
    let ed = editor_writing(
        d,
        "https2",
        &secrets_text(&url, "age").replace("[component:app]", "[component:app]\nworkers = 2"),
    );
    let out = run(age_cmd(&p, &key, d, &["secrets", "edit", "prod"]).env("EDITOR", &ed));
    assert!(
        stderr(&out).contains(&format!("cannot fetch keys from {url}")),
        "{}",
        stderr(&out)
    );
}

/// An EDITOR that writes bytes that are not UTF-8.
fn editor_writing_bytes(dir: &Path, name: &str) -> String {
    let script = dir.join(name);
    std::fs::write(&script, "#!/bin/sh\nprintf '\\377\\376x\\n' > \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[test]
fn bad_input_to_secrets_gets_a_clear_message_and_changes_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let (p, key, public) = age_project("secrets-input", keys.path());
    let batou = |args: &[&str], editor: Option<&str>| {
        let mut c = age_cmd(&p, &key, keys.path(), args);
        if let Some(e) = editor {
            c.env("EDITOR", e);
        }
        run(&mut c)
    };
    let ed = editor_writing(keys.path(), "good", &secrets_text(&public, "age"));
    ok(&batou(&["secrets", "edit", "prod"], Some(&ed)));
    let before = snapshot(&p.path.join("environments"));
    let fails_with = |out: Output, message: &str| {
        assert!(!out.status.success(), "succeeded:\n{}", stdout(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains(message), "missing {message:?} in:\n{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert_eq!(
            snapshot(&p.path.join("environments")),
            before,
            "changed nothing"
        );
    };

    // Secret file names that could leave the environment directory.
    for name in ["../escape", ".hidden"] {
        fails_with(
            batou(&["secrets", "edit", "prod", name], Some(&ed)),
            &format!("Invalid secret file name {name:?}"),
        );
    }
    // The editor fails; the editor writes bytes that are not text.
    fails_with(
        batou(&["secrets", "edit", "--editor", "false", "prod"], None),
        "The editor \"false\" failed (exit status: 1); nothing was encrypted",
    );
    let binary = editor_writing_bytes(keys.path(), "binary");
    fails_with(
        batou(&["secrets", "edit", "prod"], Some(&binary)),
        "The edited text is not UTF-8",
    );

    // No identity to decrypt with.
    let home = tempfile::tempdir().unwrap();
    let out = p
        .command(&["deploy", "-c", "prod"])
        .env("HOME", home.path())
        .env_remove("BATOU_AGE_IDENTITIES")
        .output()
        .unwrap();
    fails_with(out, "no identity found (set BATOU_AGE_IDENTITIES");

    // An OpenPGP file where no gpg can be found.
    let age_file = p.path.join("environments/prod/secrets.cfg.age");
    let saved = std::fs::read(&age_file).unwrap();
    std::fs::remove_file(&age_file).unwrap();
    std::fs::write(
        p.path.join("environments/prod/secrets.cfg.gpg"),
        b"\x85junk",
    )
    .unwrap();
    let no_gpg = tempfile::tempdir().unwrap();
    let out = p
        .command(&["deploy", "-c", "prod"])
        .env("PATH", no_gpg.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("Could not find gpg (tried `gpg`, `gpg2`)"),
        "{text}"
    );
    std::fs::remove_file(p.path.join("environments/prod/secrets.cfg.gpg")).unwrap();
    std::fs::write(&age_file, saved).unwrap();

    // age-diffable with a value that is not base64.
    let ed = editor_writing(
        keys.path(),
        "diffable",
        &secrets_text(&public, "age-diffable"),
    );
    ok(&batou(&["secrets", "edit", "prod"], Some(&ed)));
    let diffable = p.path.join("environments/prod/secrets.cfg.age-diffable");
    let text = std::fs::read_to_string(&diffable).unwrap();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.starts_with("password = ") {
                "password = not*base64".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(broken, text.trim_end(), "{text}");
    std::fs::write(&diffable, broken + "\n").unwrap();
    let text = stdout(&batou(&["deploy", "-c", "prod"], None));
    assert!(
        text.contains("[component:app] password: not base64"),
        "{text}"
    );
}
