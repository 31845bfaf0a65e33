//! Learning-rate schedules by epoch (0-based).

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// The reference's: multiply by `ratio` every `every` epochs.
    Step { every: usize, ratio: f64 },
    /// Cosine from the base rate down to zero over `epochs`.
    Cosine { epochs: usize },
}

impl Schedule {
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Step { every, ratio } => base * ratio.powi((epoch / every.max(1)) as i32),
            Schedule::Cosine { epochs } => {
                let t = epoch.min(epochs) as f64 / epochs.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decays_every_epoch_step_and_cosine_reaches_zero() {
        let step = Schedule::Step {
            every: 10,
            ratio: 0.1,
        };
        assert_eq!(step.lr(1.0, 9), 1.0);
        assert!((step.lr(1.0, 10) - 0.1).abs() < 1e-12);
        assert!((step.lr(1.0, 25) - 0.01).abs() < 1e-12);
        let cosine = Schedule::Cosine { epochs: 4 };
        assert_eq!(cosine.lr(0.1, 0), 0.1);
        assert!((cosine.lr(0.1, 2) - 0.05).abs() < 1e-12);
        assert!(cosine.lr(0.1, 4).abs() < 1e-12);
    }
}
