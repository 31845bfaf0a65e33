//! The steps of a study as progress names them: one list, shown alike by the command line's
//! progress bars and the workbench's status line.

/// A step of the analysis pipeline, or of a comparison of several models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Evaluating,
    ChoosingSubsets,
    TradeoffSweep,
    /// The static baselines run on an evaluation's images (the adaptivity of records).
    StaticBaselines,
    Profiling,
    /// A comparison: every model on each decoded batch.
    EvaluatingModels,
    /// A comparison: the model at this position's static subsets, sweep and profile.
    Model(usize),
    /// The shipped models side by side (`--export`'s Models section).
    ShippedModels,
}

impl Phase {
    /// Whether the phase belongs to a comparison of several models.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Phase::EvaluatingModels | Phase::Model(_) | Phase::ShippedModels
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Evaluating => f.write_str("evaluating"),
            Phase::ChoosingSubsets => f.write_str("choosing static subsets"),
            Phase::TradeoffSweep => f.write_str("trade-off sweep"),
            Phase::StaticBaselines => f.write_str("static baselines"),
            Phase::Profiling => f.write_str("profiling"),
            Phase::EvaluatingModels => f.write_str("evaluating every model"),
            Phase::Model(m) => write!(f, "model {}: baselines, sweep, profile", m + 1),
            Phase::ShippedModels => f.write_str("comparing the shipped models"),
        }
    }
}
