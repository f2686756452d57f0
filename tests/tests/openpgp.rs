//! OpenPGP interoperability with the real GnuPG, in-process: certificates
//! read from GnuPG's keybox, sequoia encrypts and gpg decrypts, gpg
//! encrypts and batou decrypts (through gpg-agent), the recipients of a
//! file are read. One test: it sets GNUPGHOME for this process.

use batou::secrets::openpgp;
use batou_tests::gpg::GnuPg;

#[test]
fn round_trips_with_gnupg() {
    let gpg = GnuPg::new();
    let alice = gpg.generate("Alice <alice@example.com>", None);
    let bob = gpg.generate("Bob <bob@example.com>", Some("bobs passphrase"));
    // SAFETY: the only test of this binary; no other thread reads the
    // environment meanwhile.
    unsafe { std::env::set_var("GNUPGHOME", gpg.home()) };

    // The keybox is read in-process; members by address, id and part.
    let ring = openpgp::keyring().unwrap().expect("pubring.kbx exists");
    assert_eq!(ring.len(), 2);
    for member in [
        "alice@example.com",
        "<alice@example.com>",
        &alice,
        &alice[alice.len() - 16..],
        "Alice",
    ] {
        let certs = openpgp::resolve_members(&[member.to_string()]).unwrap();
        assert_eq!(certs[0].fingerprint().to_hex(), alice, "{member}");
    }
    let err = openpgp::resolve_members(&["carol@example.com".into()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("no OpenPGP certificate for member \"carol@example.com\""),
        "{err}"
    );

    // We encrypt to both; gpg decrypts (Alice's key needs no passphrase).
    let certs =
        openpgp::resolve_members(&["alice@example.com".into(), "bob@example.com".into()]).unwrap();
    let data = openpgp::encrypt(&certs, b"[batou]\nmembers = alice\n").unwrap();
    let out = gpg.decrypt(&data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"[batou]\nmembers = alice\n");
    assert_eq!(
        openpgp::recipients_of(&data),
        openpgp::encryption_key_ids(&certs)
    );
    assert_eq!(openpgp::recipients_of(&data).len(), 2);

    // gpg encrypts to Bob only; his key is unlocked only in gpg-agent.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.cfg.gpg");
    std::fs::write(
        &file,
        gpg.encrypt(&["bob@example.com"], "password = hunter2\n"),
    )
    .unwrap();
    gpg.preset("bob@example.com", "bobs passphrase");
    let clear = openpgp::decrypt(&file, "secrets.cfg.gpg").unwrap();
    assert_eq!(&clear[..], b"password = hunter2\n");

    // Without the agent's cache (and no pinentry), decryption fails with
    // a message naming the file and the key it is encrypted to.
    gpg.forget_passphrases();
    gpg.delete_secret_key(&bob);
    let err = openpgp::decrypt(&file, "environments/prod/secrets.cfg.gpg")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Cannot decrypt environments/prod/secrets.cfg.gpg: gpg:"),
        "{err}"
    );
    assert!(err.contains("(Bob <bob@example.com>)"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
