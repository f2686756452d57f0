//! User and group lookups from /etc/passwd and /etc/group.
//!
//! Read directly instead of through libc's NSS, so a statically linked agent
//! resolves names on every host (see the crate notes on static builds).

use std::path::Path;

fn lookup(db: &Path, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
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
    }
}
