//! FNV-1a (64-bit): a cheap, stable fingerprint of bytes, to tell whether two files or
//! datasets are the same (never for security).

/// A running FNV-1a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }

    /// The hash of `bytes` as 16 hex digits.
    pub fn hex_of(bytes: &[u8]) -> String {
        let mut hash = Fnv::default();
        hash.update(bytes);
        format!("{:016x}", hash.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors.
    #[test]
    fn known_vectors() {
        assert_eq!(Fnv::hex_of(b""), "cbf29ce484222325");
        assert_eq!(Fnv::hex_of(b"a"), "af63dc4c8601ec8c");
        assert_eq!(Fnv::hex_of(b"foobar"), "85944171f73967e8");
    }
}
