//! OpenPGP: encryption in-process with sequoia-openpgp to the members'
//! certificates from the user's GnuPG keyring; decryption through `gpg`
//! (the secret keys live in gpg-agent: passphrase cache, smartcards), its
//! cleartext read from a pipe.

use super::{Clear, Result, SecretsError};
use openpgp::cert::{Cert, CertParser};
use openpgp::packet::Packet;
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::types::KeyFlags;
use openpgp::{KeyHandle, KeyID};
use sequoia_openpgp as openpgp;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The GnuPG home: `$GNUPGHOME`, else `~/.gnupg`.
pub fn gnupg_home() -> PathBuf {
    match std::env::var_os("GNUPGHOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => crate::model::expand_user(Path::new("~/.gnupg")),
    }
}

/// The public certificates of the GnuPG home, read in-process from
/// `pubring.kbx` or `pubring.gpg`; `None` when there is neither (GnuPG
/// with keyboxd).
pub fn keyring() -> Result<Option<Vec<Cert>>> {
    let home = gnupg_home();
    for (name, keybox) in [("pubring.kbx", true), ("pubring.gpg", false)] {
        let path = home.join(name);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(SecretsError::Io {
                    what: format!("Cannot read {}", path.display()),
                    source: e,
                })
            }
        };
        let mut certs = Vec::new();
        if keybox {
            for block in keybox_keyblocks(&data) {
                certs.extend(
                    CertParser::from_bytes(block)
                        .into_iter()
                        .flatten()
                        .flatten(),
                );
            }
        } else {
            certs.extend(
                CertParser::from_bytes(&data)
                    .into_iter()
                    .flatten()
                    .flatten(),
            );
        }
        return Ok(Some(certs));
    }
    Ok(None)
}

/// The OpenPGP keyblocks of a GnuPG keybox (`pubring.kbx`): blobs of
/// type 2 hold one at the offset and length in their header.
pub fn keybox_keyblocks(data: &[u8]) -> Vec<&[u8]> {
    let be32 = |b: &[u8], at: usize| -> Option<usize> {
        b.get(at..at + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(len) = be32(data, pos) {
        if len < 5 || pos + len > data.len() {
            break;
        }
        let blob = &data[pos..pos + len];
        if blob[4] == 2 {
            if let (Some(off), Some(n)) = (be32(blob, 8), be32(blob, 12)) {
                if let Some(block) = blob.get(off..off.saturating_add(n)) {
                    out.push(block);
                }
            }
        }
        pos += len;
    }
    out
}

/// Does `member` (a key id or fingerprint, `<email>`, or a part of a
/// user id, as `gpg -r` takes) name this certificate?
pub fn names(cert: &Cert, member: &str) -> bool {
    let m = member.trim();
    let hex: String = m
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ' ')
        .collect::<String>()
        .to_uppercase();
    if hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return cert
            .keys()
            .any(|k| k.key().fingerprint().to_hex().ends_with(&hex));
    }
    let lower = m.to_lowercase();
    cert.userids().any(|u| {
        let uid = String::from_utf8_lossy(u.userid().value()).to_lowercase();
        // `<email>` matches the address exactly, anything else a part.
        uid.contains(&lower)
    })
}

/// The certificate of every member, from the keyring (or `gpg --export`
/// when GnuPG keeps no keyring file). A member without a certificate is
/// an error naming it and the GnuPG home.
pub fn resolve_members(members: &[String]) -> Result<Vec<Cert>> {
    let ring = keyring()?;
    let mut out = Vec::new();
    for m in members {
        let found = match &ring {
            Some(certs) => certs.iter().find(|c| names(c, m)).cloned(),
            None => export(m)?.into_iter().find(|c| names(c, m)),
        };
        match found {
            Some(c) => out.push(c),
            None => {
                return Err(SecretsError::Encrypt {
                    file: "(members)".into(),
                    reason: format!(
                        "no OpenPGP certificate for member {m:?} in the GnuPG keyring {} \
                         (import it with `gpg --import`)",
                        gnupg_home().display()
                    ),
                })
            }
        }
    }
    Ok(out)
}

fn export(member: &str) -> Result<Vec<Cert>> {
    let out = Command::new(gpg()?)
        .args(["--batch", "--export", member])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(SecretsError::io("Cannot run gpg --export"))?;
    Ok(CertParser::from_bytes(&out.stdout)
        .into_iter()
        .flatten()
        .flatten()
        .collect())
}

fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_transport_encryption()
        .set_storage_encryption()
}

/// The key ids of the encryption keys `encrypt` uses for these
/// certificates (to tell whether a file's recipients changed).
pub fn encryption_key_ids(certs: &[Cert]) -> BTreeSet<String> {
    let p = StandardPolicy::new();
    certs
        .iter()
        .flat_map(|c| {
            c.keys()
                .with_policy(&p, None)
                .supported()
                .alive()
                .revoked(false)
                .key_flags(encryption_flags())
                .map(|k| k.key().keyid().to_hex())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Encrypts to every valid encryption key of the certificates (binary,
/// as `gpg --encrypt`).
pub fn encrypt(certs: &[Cert], plaintext: &[u8]) -> Result<Vec<u8>> {
    let p = StandardPolicy::new();
    let mut recipients = Vec::new();
    for c in certs {
        let keys: Vec<_> = c
            .keys()
            .with_policy(&p, None)
            .supported()
            .alive()
            .revoked(false)
            .key_flags(encryption_flags())
            .collect();
        if keys.is_empty() {
            return Err(SecretsError::Encrypt {
                file: "(members)".into(),
                reason: format!(
                    "certificate {} ({}) has no valid encryption key (expired or revoked?)",
                    c.fingerprint(),
                    primary_uid(c)
                ),
            });
        }
        recipients.extend(keys);
    }
    let fail = |e: &dyn std::fmt::Display| SecretsError::Encrypt {
        file: "(data)".into(),
        reason: e.to_string(),
    };
    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let message = Encryptor::for_recipients(message, recipients)
            .build()
            .map_err(|e| fail(&e))?;
        let mut w = LiteralWriter::new(message).build().map_err(|e| fail(&e))?;
        w.write_all(plaintext).map_err(|e| fail(&e))?;
        w.finalize().map_err(|e| fail(&e))?;
    }
    Ok(sink)
}

fn primary_uid(c: &Cert) -> String {
    c.userids()
        .next()
        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
        .unwrap_or_else(|| "no user id".into())
}

/// The key ids an OpenPGP message is encrypted to (from its PKESK
/// packets; "anonymous" for hidden recipients).
pub fn recipients_of(data: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(mut ppr) = PacketParser::from_bytes(data) else {
        return out;
    };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => {
                out.insert(match p.recipient() {
                    Some(KeyHandle::KeyID(id)) => id.to_hex(),
                    Some(KeyHandle::Fingerprint(fp)) => KeyID::from(&fp).to_hex(),
                    None => "anonymous".into(),
                });
            }
            Packet::SEIP(_) => break,
            _ => {}
        }
        match pp.next() {
            Ok((_, next)) => ppr = next,
            Err(_) => break,
        }
    }
    out
}

/// "ID (user id)" for each recipient key id, with the user id from the
/// keyring where known.
pub fn describe_recipients(ids: &BTreeSet<String>) -> String {
    let ring = keyring().ok().flatten().unwrap_or_default();
    let mut parts = Vec::new();
    for id in ids {
        let owner = ring
            .iter()
            .find(|c| c.keys().any(|k| k.key().keyid().to_hex() == *id));
        parts.push(match owner {
            Some(c) => format!("{id} ({})", primary_uid(c)),
            None => format!("{id} (not in your keyring)"),
        });
    }
    if parts.is_empty() {
        "no recipients found".into()
    } else {
        parts.join(", ")
    }
}

/// The gpg executable: the first of `gpg`, `gpg2` that runs.
pub fn gpg() -> Result<&'static str> {
    static FOUND: OnceLock<Option<&'static str>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            ["gpg", "gpg2"].into_iter().find(|g| {
                Command::new(g)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            })
        })
        .ok_or_else(|| {
            SecretsError::Usage(
                "Could not find gpg (tried `gpg`, `gpg2`): decrypting OpenPGP secrets needs GnuPG \
                 and the user's keys in gpg-agent"
                    .into(),
            )
        })
}

/// Decrypts a file with `gpg --decrypt` (gpg-agent holds the keys); the
/// cleartext comes through a pipe. The error names the file, what gpg
/// said and the keys the file is encrypted to.
pub fn decrypt(path: &Path, display: &str) -> Result<Clear> {
    let out = Command::new(gpg()?)
        .args(["--quiet", "--decrypt"])
        .arg(path)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(SecretsError::io("Cannot run gpg"))?;
    let clear = Clear::new(out.stdout);
    if out.status.success() {
        return Ok(clear);
    }
    let said: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("gpg:"))
        .map(str::to_string)
        .collect();
    let data = std::fs::read(path).unwrap_or_default();
    Err(SecretsError::Decrypt {
        file: display.to_string(),
        reason: format!(
            "{} It is encrypted to: {}.",
            if said.is_empty() {
                format!("gpg exited with {}.", out.status)
            } else {
                said.join("; ") + "."
            },
            describe_recipients(&recipients_of(&data))
        ),
    })
}
