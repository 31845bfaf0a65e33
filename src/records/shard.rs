//! One of N deterministic, disjoint parts of an evaluation (`eval --shard K/N`): part K of
//! the first `total` images is the contiguous range `⌊(K−1)·total/N⌋ .. ⌊K·total/N⌋`, so the
//! parts cover every image once, in order, and `merge` puts them back together
//! (docs/formats.md, "Per-image records").

use std::fmt;
use std::ops::Range;

/// More parts than this is not a split of an image set anyone evaluates.
pub const MAX_PARTS: usize = 1_000_000;

/// Part `part` (1-based) of `parts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub part: usize,
    pub parts: usize,
}

impl Shard {
    /// `K/N` with 1 ≤ K ≤ N ≤ [`MAX_PARTS`].
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not K/N (e.g. 2/8: the second of 8 parts)"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} in {text:?} is not a whole number"))
        };
        let (part, parts) = (number(k)?, number(n)?);
        if parts == 0 || parts > MAX_PARTS || part == 0 || part > parts {
            return Err(format!(
                "{text:?}: K/N needs 1 ≤ K ≤ N ≤ {MAX_PARTS} (parts count from 1)"
            ));
        }
        Ok(Shard { part, parts })
    }

    /// The dataset indices of this part of the first `total` images.
    pub fn range(&self, total: usize) -> Range<usize> {
        // u128: part·total cannot overflow.
        let at = |k: usize| (k as u128 * total as u128 / self.parts as u128) as usize;
        at(self.part - 1)..at(self.part)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.part, self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_image_once_in_order() {
        for total in [0usize, 1, 2, 7, 1000, 10_001] {
            for parts in [1usize, 2, 3, 7, 64] {
                let mut next = 0;
                for part in 1..=parts {
                    let range = Shard { part, parts }.range(total);
                    assert_eq!(range.start, next, "{part}/{parts} of {total}");
                    next = range.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn parsing_names_the_problem() {
        assert_eq!(Shard::parse("2/8"), Ok(Shard { part: 2, parts: 8 }));
        assert_eq!(Shard::parse("2/8").unwrap().to_string(), "2/8");
        for bad in [
            "0/3",
            "4/3",
            "1/0",
            "a/3",
            "3",
            "",
            "1/2/3",
            "-1/3",
            "1/2000000",
        ] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
