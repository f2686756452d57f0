//! Checksums as batou writes them: `algorithm:hexdigest` (hashlib names).

use sha2::digest::DynDigest;
use std::io::Read;
use std::path::Path;

/// A hash algorithm of a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `md5`.
    Md5,
    /// `sha1`.
    Sha1,
    /// `sha224`.
    Sha224,
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// All algorithms, by name.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ];

    /// The name in a checksum.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha224 => "sha224",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hasher(self) -> Box<dyn DynDigest> {
        match self {
            Algorithm::Md5 => Box::new(md5::Md5::default()),
            Algorithm::Sha1 => Box::new(sha1::Sha1::default()),
            Algorithm::Sha224 => Box::new(sha2::Sha224::default()),
            Algorithm::Sha256 => Box::new(sha2::Sha256::default()),
            Algorithm::Sha384 => Box::new(sha2::Sha384::default()),
            Algorithm::Sha512 => Box::new(sha2::Sha512::default()),
        }
    }

    /// The digest of `data` (lowercase hex).
    pub fn digest(self, data: &[u8]) -> String {
        let mut hasher = Hasher(self.hasher());
        hasher.update(data);
        hasher.finish()
    }

    /// The digest of a file's content (lowercase hex).
    pub fn digest_file(self, path: &Path) -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Hasher(self.hasher());
        let mut buffer = vec![0u8; 256 << 10];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return Ok(hasher.finish()),
                Ok(n) => hasher.update(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Length of the digest in hex digits.
    fn hex_len(self) -> usize {
        self.hasher().output_size() * 2
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An expected checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    algorithm: Algorithm,
    hex: String,
}

/// A hash being computed.
pub struct Hasher(Box<dyn DynDigest>);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    /// Adds data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest in lowercase hex.
    pub fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Checksum {
    /// Parses `algorithm:hexdigest`; the message says what is wrong.
    ///
    /// ```
    /// use batou_stdlib::checksum::Checksum;
    /// let c = Checksum::parse("SHA256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855").unwrap();
    /// assert_eq!(c.algorithm().name(), "sha256");
    /// assert!(Checksum::parse("sha256:abc").unwrap_err().contains("64 hex digits"));
    /// assert!(Checksum::parse("crc32:abcd").unwrap_err().contains("unknown checksum algorithm"));
    /// ```
    pub fn parse(text: &str) -> Result<Checksum, String> {
        let text = text.trim();
        let Some((name, hex)) = text.split_once(':') else {
            return Err(format!(
                "malformed checksum {text:?}: expected algorithm:hexdigest, e.g. sha256:…"
            ));
        };
        let name = name.trim().to_ascii_lowercase();
        let algorithm = Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown checksum algorithm {name:?} (known: {})",
                    known.join(", ")
                )
            })?;
        let hex = hex.trim().to_ascii_lowercase();
        let want = algorithm.hex_len();
        if hex.len() != want || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "malformed {} checksum {hex:?}: expected {want} hex digits",
                algorithm.name()
            ));
        }
        Ok(Checksum { algorithm, hex })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The expected digest, lowercase hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A hasher of this checksum's algorithm.
    pub fn hasher(&self) -> Hasher {
        Hasher(self.algorithm.hasher())
    }

    /// The digest of a file's content (lowercase hex).
    pub fn of_file(&self, path: &Path) -> std::io::Result<String> {
        self.algorithm.digest_file(path)
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_hashes_like_hashlib() {
        // hashlib.new(name, b"batou").hexdigest()
        let known = [
            ("md5", "f77bbd81d96aa4c5eba33880fcd95521"),
            ("sha1", "6d4044f1dcd604ec5c5d7ba045e7ada5ddf80c54"),
            ("sha224", "9605bc5b583efab13b9e321160c262a046339db769d2bab45a2d1eb4"),
            ("sha256", "726c2ed3d0f373e03498c07a09afdbcaa0c6f63d825f8cf60c95bd3d345fa1aa"),
            ("sha384", "fbc169fcf640710d660aece3f8dea288424f00e516d237f05010be75ed7e1b509b51b15dd781cfcaef98e78ae30a6a97"),
            ("sha512", "9dd93a7998c2864b321937b122ac048e4953b81b513cab8fa91ffed662b045868932cd90d806c7be1a2cc7a92eb627dcf2537e6a9cebbdf2bdb0231f883eb4ce"),
        ];
        for (name, hex) in known {
            let c = Checksum::parse(&format!("{name}:{hex}")).unwrap();
            let mut h = c.hasher();
            h.update(b"bat");
            h.update(b"ou");
            assert_eq!(h.finish(), c.hex(), "{name}");
        }
    }

    #[test]
    fn malformed_checksums_say_what_is_wrong() {
        assert_eq!(
            Checksum::parse("deadbeef").unwrap_err(),
            "malformed checksum \"deadbeef\": expected algorithm:hexdigest, e.g. sha256:…"
        );
        assert_eq!(
            Checksum::parse("crc32:1234").unwrap_err(),
            "unknown checksum algorithm \"crc32\" (known: md5, sha1, sha224, sha256, sha384, sha512)"
        );
        assert_eq!(
            Checksum::parse("md5:xyz").unwrap_err(),
            "malformed md5 checksum \"xyz\": expected 32 hex digits"
        );
    }
}
