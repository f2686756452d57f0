//! User and group lookups from /etc/passwd and /etc/group.
//!
//! Read directly instead of through libc's NSS, so a statically linked agent
//! resolves names on every host (see the crate notes on static builds).

use std::path::Path;

/// The largest valid user or group id: `(uid_t)-1` means "unchanged" to
/// chown and is no id.
pub const MAX_ID: u32 = u32::MAX - 1;

/// A numeric id must be in range; names are looked up on the host.
pub fn check_id(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        match name.parse::<u64>() {
            Ok(id) if id <= u64::from(MAX_ID) => {}
            _ => return Err(format!("{name} is out of range (0 to {MAX_ID})")),
        }
    }
    Ok(())
}

fn lookup(db: &Path, name: &str) -> Option<u32> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<u32>().ok().filter(|id| *id <= MAX_ID);
    }
    let text = std::fs::read_to_string(db).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// The uid of a user name (or a numeric id).
pub fn uid(name: &str) -> Option<u32> {
    lookup(Path::new("/etc/passwd"), name)
}

/// The gid of a group name (or a numeric id).
pub fn gid(name: &str) -> Option<u32> {
    lookup(Path::new("/etc/group"), name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_and_numbers() {
        assert_eq!(super::uid("root"), Some(0));
        assert_eq!(super::gid("0"), Some(0));
        assert_eq!(super::uid("no-such-user-batou"), None);
        assert_eq!(super::gid("4294967295"), None);
        assert_eq!(
            super::check_id("4294967295").unwrap_err(),
            "4294967295 is out of range (0 to 4294967294)"
        );
        assert!(super::check_id("4294967294").is_ok());
        assert!(super::check_id("www-data").is_ok());
    }
}
