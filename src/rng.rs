//! A small seeded generator (SplitMix64) for shuffling, augmentation and policy sampling, so
//! a run is reproducible from its seed and an epoch's randomness does not depend on whether
//! the run was resumed before it; its output function ([`mix64`]) also makes the trade-off's
//! stateless coins.

/// SplitMix64's output function: a bijection that scatters nearby inputs over all 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded `seed`, or continuing from a saved [`Rng::state`].
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The whole state: `Rng::new(rng.state())` continues where `rng` stands.
    pub fn state(&self) -> u64 {
        self.0
    }

    /// The generator for one purpose (`stream`) in one epoch of a run seeded `seed`.
    pub fn for_epoch(seed: u64, epoch: usize, stream: u64) -> Self {
        let mut rng = Self::new(seed ^ 0x5851_f42d_4c95_7f2d);
        let a = rng.next_u64();
        Self::new(a ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream.rotate_left(32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_and_epochs_differ() {
        let mut rng = Rng::for_epoch(7, 0, 0);
        assert!((0..10_000)
            .map(|_| rng.uniform())
            .all(|u| (0.0..1.0).contains(&u)));
        let first: Vec<u64> = (0..4).map(|_| Rng::for_epoch(7, 0, 0).next_u64()).collect();
        assert!(
            first.windows(2).all(|w| w[0] == w[1]),
            "same seed and epoch, same stream"
        );
        assert_ne!(
            Rng::for_epoch(7, 0, 0).next_u64(),
            Rng::for_epoch(7, 1, 0).next_u64()
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<usize> = (0..100).collect();
        Rng::new(3).shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
