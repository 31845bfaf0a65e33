//! The analysis pipeline, in one place. One sequence, each step named with its progress
//! [`Phase`]: evaluate, choose the static subsets, sweep the trade-off (which measures the
//! adaptivity) or measure the adaptivity of records alone, profile. [`Options`] holds the
//! preset `export`, `--export`, the workbench and (through its profile) `compare` share.
//! `report`, `compare`, the workbench's worker and the command line call these steps and only
//! draw or print what they return (docs/architecture.md).

mod phase;

pub use phase::Phase;

use candle_core::Device;

use crate::analysis;
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::adaptivity::Adaptivity;
use crate::eval::baselines::Selection;
use crate::eval::tradeoff::{self, Tradeoff, TradeoffOptions};
use crate::eval::{self, EvalOptions};
use crate::model::BlockDrop;
use crate::profile::cost::{CostTable, PredictedLatency};
use crate::profile::{self, ProfileOptions, ProfileReport};
use crate::records::Record;

/// Images the report's trade-off sweep uses (each point re-runs the base network on them).
pub const TRADEOFF_IMAGES: usize = 500;
/// Images timed one by one in a report's or a comparison's profile.
pub const PROFILE_IMAGES: usize = 8;
/// Timed runs per measurement in a report's or a comparison's profile.
pub const PROFILE_REPEATS: usize = 5;
/// Images per gallery figure.
pub const GALLERY_IMAGES: usize = 12;

/// The profile a report and a comparison run: a few images, batch 1.
pub const REPORT_PROFILE: ProfileOptions = ProfileOptions {
    images: PROFILE_IMAGES,
    batch: 1,
    repeat: PROFILE_REPEATS,
    warmup: 1,
};

/// What a study computes, and how its report draws it. The default is the one preset that
/// `export`, `--export` and the terminal app's `e` (and its Trade-off and Profile views) share.
#[derive(Debug, Clone)]
pub struct Options {
    pub eval: EvalOptions,
    pub tradeoff: TradeoffOptions,
    /// `None` skips profiling.
    pub profile: Option<ProfileOptions>,
    /// Clusters in the coarse clustering; `None` is [`analysis::DEFAULT_CLUSTERS`] (fewer when
    /// fewer policies are distinct).
    pub clusters: Option<usize>,
    /// Images per gallery.
    pub gallery: usize,
    /// A cost table for the model's configuration: the study predicts the latency it gives.
    pub cost: Option<CostTable>,
    /// The trade-off figure's x-axis: latency (from `cost`, else from this study's own
    /// profile) instead of FLOPs.
    pub latency_axis: bool,
    /// Run the threshold sweep and static baselines (`--no-tradeoff` leaves them out, with
    /// the trade-off figure, `tradeoff.csv` and the adaptivity).
    pub sweep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            eval: EvalOptions {
                keep_logits: true,
                ..EvalOptions::default()
            },
            tradeoff: TradeoffOptions {
                limit: Some(TRADEOFF_IMAGES),
                ..TradeoffOptions::default()
            },
            profile: Some(REPORT_PROFILE),
            clusters: None,
            gallery: GALLERY_IMAGES,
            cost: None,
            latency_axis: false,
            sweep: true,
        }
    }
}

/// What a study found: everything a report shows about one model.
pub struct Study<'a> {
    pub title: String,
    pub model: &'a BlockDrop,
    pub dataset: &'a Dataset,
    pub records: Vec<Record>,
    /// The sweep and adaptivity; `None` when left out (`--no-tradeoff`), or for a base
    /// network alone, which has no policy to sweep.
    pub tradeoff: Option<Tradeoff>,
    pub profile: Option<ProfileReport>,
    /// The latency the user's cost table predicts for the records.
    pub predicted: Option<PredictedLatency>,
}

/// The whole sequence on `model`: evaluation, then [`run_on_records`].
pub fn run<'a>(
    model: &'a BlockDrop,
    dataset: &'a Dataset,
    selection: &Selection,
    options: &Options,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Study<'a>> {
    let records = evaluate(model, dataset, &options.eval, device, &mut progress)?;
    run_on_records(
        model, dataset, records, selection, options, device, progress,
    )
}

/// The sequence from an evaluation's `records` (`export --records`): nothing is evaluated
/// again; the sweep (on `options.tradeoff.limit` images) and the profile still run.
pub fn run_on_records<'a>(
    model: &'a BlockDrop,
    dataset: &'a Dataset,
    records: Vec<Record>,
    selection: &Selection,
    options: &Options,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Study<'a>> {
    let tradeoff = if options.sweep && model.has_policy() {
        Some(sweep(
            model,
            dataset,
            selection,
            &options.tradeoff,
            device,
            &mut progress,
        )?)
    } else {
        None
    };
    let profile = match &options.profile {
        Some(p) => Some(profile(model, dataset, p, device, &mut progress)?),
        None => None,
    };
    Ok(Study {
        title: format!("{} on {}", model.config.name, dataset.path.display()),
        model,
        dataset,
        predicted: predicted(options.cost.as_ref(), &records)?,
        records,
        tradeoff,
        profile,
    })
}

/// Step: every image (or the first `options.limit`) through the model, one record each.
pub fn evaluate(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &EvalOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Vec<Record>> {
    eval::evaluate(model, dataset, options, device, |done, total| {
        progress(Phase::Evaluating, done, total)
    })
}

/// Steps: the best static subsets chosen on `selection`, then the threshold sweep with every
/// baseline, which also measures the adaptivity at `options.threshold`.
pub fn sweep(
    model: &BlockDrop,
    dataset: &Dataset,
    selection: &Selection,
    options: &TradeoffOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Tradeoff> {
    let subsets = tradeoff::choose_subsets(model, selection, options, device, |d, t| {
        progress(Phase::ChoosingSubsets, d, t)
    })?;
    tradeoff::tradeoff(model, dataset, &subsets, options, device, |d, t| {
        progress(Phase::TradeoffSweep, d, t)
    })
}

/// Steps: the best static subsets chosen on `selection`, then the static baselines run on the
/// images of `records`, whose own outcome is the learned one (`eval --adaptivity`).
pub fn adaptivity(
    model: &BlockDrop,
    dataset: &Dataset,
    records: &[Record],
    selection: &Selection,
    options: &TradeoffOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Adaptivity> {
    let subsets = tradeoff::choose_subsets(model, selection, options, device, |d, t| {
        progress(Phase::ChoosingSubsets, d, t)
    })?;
    tradeoff::adaptivity_of_records(
        model,
        dataset,
        records,
        &subsets,
        options,
        device,
        |d, t| progress(Phase::StaticBaselines, d, t),
    )
}

/// Step: per-stage and per-image timing on the model's device.
pub fn profile(
    model: &BlockDrop,
    dataset: &Dataset,
    options: &ProfileOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<ProfileReport> {
    progress(Phase::Profiling, 0, 1);
    profile::profile(model, dataset, options, device)
}

/// The split the best static subsets are chosen on: the one of `reported`'s data that is not
/// reported (train for test, test for train), the bundled training sample for the `bundled`
/// test sample; or why there is none.
pub fn selection_split(reported: &Dataset, bundled: bool) -> std::result::Result<Dataset, String> {
    if bundled {
        crate::bundled::sample_train_dataset().map_err(|e| e.to_string())
    } else {
        reported.open_other().map_err(|e| e.to_string())
    }
}

/// The latency `cost` predicts at the keep rates of `records`.
pub fn predicted(cost: Option<&CostTable>, records: &[Record]) -> Result<Option<PredictedLatency>> {
    cost.map(|table| Ok(PredictedLatency::of(table, &analysis::keep_rates(records)?)))
        .transpose()
}
