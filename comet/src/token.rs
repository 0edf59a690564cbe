//! Client tokens. The private token is the only thing that lets you receive
//! a client's messages, so it is a newtype that cannot be logged by accident
//! (`Debug` prints `PrivateToken(…)`) and providers only ever store its
//! SHA-256 digest. The public token is how clients address each other.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes of OS randomness in a private token (256 bits).
const PRIVATE_BYTES: usize = 32;
/// Bytes of OS randomness in a public token (128 bits).
const PUBLIC_BYTES: usize = 16;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not something a server can recover from.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    hex(&buf)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn is_hex_of_len(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A hash map keyed by tokens this server made from OS randomness (token
/// digests, public tokens). Their bytes are uniformly random already, so
/// SipHash's defence against chosen keys buys nothing here; a poll looks
/// such keys up four times. A client can only look keys up, never insert
/// one of its choosing. Not for keys a client picks (names, channels).
pub type TokenMap<K, V> = HashMap<K, V, BuildHasherDefault<TokenHasher>>;

/// [`TokenMap`]'s hasher: a multiply-rotate fold of the key's bytes.
#[derive(Default)]
pub struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A client's secret. Travels only in the `comet_token` cookie or an
/// `Authorization: Bearer` header.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateToken(String);

impl PrivateToken {
    pub fn generate() -> Self {
        Self(random_hex(PRIVATE_BYTES))
    }

    /// Accepts only the shape [`generate`](Self::generate) makes, so junk is
    /// refused before it reaches a provider.
    pub fn parse(s: &str) -> Option<Self> {
        is_hex_of_len(s, PRIVATE_BYTES).then(|| Self(s.to_owned()))
    }

    /// The secret itself, for the one place that must send it (the cookie).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for PrivateToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateToken(…)")
    }
}

/// What providers store instead of a private token: its SHA-256, kept as
/// 32 bytes (not hex) since every client stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The digest [`to_hex`](Self::to_hex) wrote (lower-case hex only).
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Self(bytes))
    }
}

/// How other clients address this one (private messages, presence). Its
/// 32 hex characters are stored inline: a client's public token is kept in
/// several maps, and a heap string per copy adds up over many clients.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicToken([u8; PUBLIC_BYTES * 2]);

impl PublicToken {
    pub fn generate() -> Self {
        Self::from_hex(&random_hex(PUBLIC_BYTES))
    }

    pub fn parse(s: &str) -> Option<Self> {
        is_hex_of_len(s, PUBLIC_BYTES).then(|| Self::from_hex(s))
    }

    fn from_hex(s: &str) -> Self {
        let mut bytes = [0u8; PUBLIC_BYTES * 2];
        bytes.copy_from_slice(s.as_bytes());
        Self(bytes)
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from validated lower-case hex.
        std::str::from_utf8(&self.0).expect("public tokens are ASCII hex")
    }
}

impl fmt::Debug for PublicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicToken({})", self.as_str())
    }
}

impl fmt::Display for PublicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_token_debug_hides_the_secret() {
        let token = PrivateToken::generate();
        assert_eq!(format!("{token:?}"), "PrivateToken(…)");
        assert!(!format!("{:?}", Some(&token)).contains(token.expose()));
    }

    #[test]
    fn tokens_are_random_and_parse_back() {
        let a = PrivateToken::generate();
        let b = PrivateToken::generate();
        assert_ne!(a, b);
        assert_eq!(PrivateToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.expose().len(), 64);
        let p = PublicToken::generate();
        assert_eq!(PublicToken::parse(p.as_str()), Some(p));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert!(PrivateToken::parse(bad).is_none(), "{bad:?}");
        }
        assert!(PublicToken::parse("zz").is_none());
    }

    #[test]
    fn a_digest_reads_back_from_its_hex_and_nothing_else_does() {
        let digest = PrivateToken::generate().digest();
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        let hex = digest.to_hex();
        assert_eq!(TokenDigest::from_hex(&hex[1..]), None);
        assert_eq!(TokenDigest::from_hex(&hex.to_uppercase()), None);
        assert_eq!(TokenDigest::from_hex(&format!("{}g", &hex[1..])), None);
        assert_eq!(
            TokenDigest::from_hex(PublicToken::generate().as_str()),
            None
        );
    }

    #[test]
    fn digest_is_not_the_token() {
        let t = PrivateToken::generate();
        assert_ne!(t.digest().to_hex(), t.expose());
        assert_eq!(t.digest().to_hex().len(), 64);
        assert_eq!(t.digest(), t.digest());
    }

    /// hashbrown picks a bucket from a hash's low bits and a tag from its
    /// top 7: both must spread for random tokens, or every look-up probes.
    #[test]
    fn token_hashes_spread_in_low_and_high_bits() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<TokenHasher>::default();
        let publics: Vec<u64> = (0..4096)
            .map(|_| build.hash_one(PublicToken::generate()))
            .collect();
        let digests: Vec<u64> = (0..4096)
            .map(|_| build.hash_one(PrivateToken::generate().digest()))
            .collect();
        for hashes in [publics, digests] {
            let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
            let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            // 4 096 random draws from 4 096 buckets fill ≈ 2 589.
            assert!(low.len() > 2400, "{} buckets used", low.len());
            assert_eq!(top.len(), 128, "every tag value used");
        }
    }
}
