//! Accuracy against FLOPs: the learned policy at a sweep of thresholds, the paper's
//! baselines at matched budgets — FirstK (the first k blocks only) and Random (each block
//! kept with probability k/K, several seeds) —, the static baselines (the model's own most
//! frequent policies and the best subset at each budget, each run on every image), the
//! oracle bound and the full network; and from the same runs, the adaptivity gain.

use candle_core::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::adaptivity::{Adaptivity, Learned};
use crate::eval::baselines::{self, Selection, MAX_USED_POLICIES, SELECTION_IMAGES};
use crate::model::blockdrop::policy_bits;
use crate::model::{BlockDrop, BlockDropFlops};
use crate::records::Record;

mod scenarios;

use scenarios::{point, scenarios, score, static_runs, static_scenarios, Keep, Scenario};

#[derive(Debug, Clone)]
pub struct TradeoffOptions {
    pub thresholds: Vec<f32>,
    /// The model's operating threshold: its policy there is the one the static baselines
    /// and the adaptivity gain are measured against.
    pub threshold: f32,
    /// Whether to run the paper's baselines at matched budgets (FirstK, Random).
    pub matched_baselines: bool,
    /// Seeds of the Random baseline per budget.
    pub random_seeds: u64,
    /// Use only the first N images.
    pub limit: Option<usize>,
    pub batch: usize,
    /// The model's most frequent policies run as static baselines.
    pub used_policies: usize,
    /// Images of the selection split the best subsets are chosen on.
    pub selection_images: usize,
    /// Run the best-subset search even above [`baselines::SEARCH_FLOP_BUDGET`] (the user
    /// asked for it by number of images).
    pub selection_forced: bool,
}

impl Default for TradeoffOptions {
    fn default() -> Self {
        Self {
            thresholds: vec![0.1, 0.3, 0.5, 0.7, 0.9],
            threshold: crate::model::DEFAULT_THRESHOLD,
            matched_baselines: true,
            random_seeds: 2,
            limit: None,
            batch: 64,
            used_policies: MAX_USED_POLICIES,
            selection_images: SELECTION_IMAGES,
            selection_forced: false,
        }
    }
}

/// How a trade-off point chooses each image's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The learned policy at one threshold.
    BlockDrop,
    /// The first k blocks only.
    FirstK,
    /// Each block kept with probability k/K.
    Random,
    /// Every block.
    Full,
    /// One of the model's own policies, run on every image.
    UsedPolicy,
    /// The best subset of k blocks, chosen on another split, run on every image.
    BestSubset,
    /// Per image, the cheapest static or learned policy that gets it right.
    Oracle,
}

impl Method {
    /// The name in `tradeoff.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Method::BlockDrop => "BlockDrop",
            Method::FirstK => "FirstK",
            Method::Random => "Random",
            Method::Full => "Full",
            Method::UsedPolicy => "UsedPolicy",
            Method::BestSubset => "BestSubset",
            Method::Oracle => "Oracle",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One point of the trade-off.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeoffPoint {
    pub method: Method,
    /// The threshold (BlockDrop), k (FirstK, Random, BestSubset, UsedPolicy, Full), or the
    /// oracle's mean blocks.
    pub parameter: f64,
    /// The fixed policy of a static baseline.
    pub policy: Option<Vec<bool>>,
    /// The Random baseline's seed.
    pub seed: Option<u64>,
    pub accuracy: f64,
    pub mean_blocks: f64,
    /// Mean FLOPs per image; BlockDrop points include the policy network.
    pub mean_flops: f64,
    /// Each block's keep rate over the images (empty for the oracle): with a cost table it
    /// predicts the point's latency ([`TradeoffPoint::predicted_us`]).
    pub keep_rates: Vec<f64>,
    /// Whether the point runs the policy network (BlockDrop points).
    pub runs_policy: bool,
}

impl TradeoffPoint {
    /// The point's predicted µs per image from `table` (the policy network counted only
    /// where it runs); `None` for the oracle, which has no keep rates.
    pub fn predicted_us(&self, table: &crate::profile::cost::CostTable) -> Option<f64> {
        if self.keep_rates.len() != table.blocks.len() {
            return None;
        }
        let policy = if self.runs_policy {
            0.0
        } else {
            table.policy.us / table.batch.max(1) as f64
        };
        Some(table.path_us(&self.keep_rates) - policy)
    }
}

/// What a trade-off chart measures cost in: mean MFLOPs per image, or µs per image
/// predicted from a cost table (measured on a device).
#[derive(Debug, Clone, Copy)]
pub enum CostAxis<'a> {
    Flops,
    Latency(&'a crate::profile::cost::CostTable),
}

impl CostAxis<'_> {
    /// A point's cost on this axis; `None` where it cannot be predicted (the oracle).
    pub fn of(&self, point: &TradeoffPoint) -> Option<f64> {
        match self {
            CostAxis::Flops => Some(point.mean_flops / 1e6),
            CostAxis::Latency(table) => point.predicted_us(table),
        }
    }

    /// The axis' label.
    pub fn label(&self) -> String {
        match self {
            CostAxis::Flops => {
                "mean MFLOPs per image (policy network included for BlockDrop)".into()
            }
            CostAxis::Latency(table) => format!(
                "predicted µs per image ({}; policy network included for BlockDrop)",
                table.measured_on()
            ),
        }
    }
}

/// One method's points as (mean MFLOPs per image, accuracy), by FLOPs: a chart's series.
pub fn series(points: &[TradeoffPoint], method: Method) -> Vec<(f64, f64)> {
    series_on(points, method, CostAxis::Flops)
}

/// One method's points as (cost on `axis`, accuracy), by cost.
pub fn series_on(points: &[TradeoffPoint], method: Method, axis: CostAxis) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.method == method)
        .filter_map(|p| Some((axis.of(p)?, p.accuracy)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The best subsets the static baselines use, and where they were chosen.
pub struct ChosenSubsets {
    /// One per budget: `subsets[k - 1]` keeps k blocks.
    pub subsets: Vec<Vec<bool>>,
    /// "128 images of the train split of DIR", or why there are none.
    pub from: String,
}

/// Chooses the best subsets on `selection` ([`baselines::best_subsets`]), or none when it is
/// unavailable.
pub fn choose_subsets(
    model: &BlockDrop,
    selection: &Selection,
    options: &TradeoffOptions,
    device: &Device,
    progress: impl FnMut(usize, usize),
) -> Result<ChosenSubsets> {
    let images = match selection {
        Selection::Split(data) => options.selection_images.min(data.len()),
        Selection::Unavailable(_) => 0,
    };
    let cost = baselines::search_flops(model, images);
    match selection {
        Selection::Split(_) if !options.selection_forced && cost > baselines::SEARCH_FLOP_BUDGET => {
            Ok(ChosenSubsets {
                subsets: Vec::new(),
                from: format!(
                    "no best subsets: searching {} blocks on {images} images would take about {:.0} TFLOP; --selection-images N runs it anyway",
                    model.num_blocks(),
                    cost / 1e12
                ),
            })
        }
        Selection::Split(data) => {
            let subsets = match baselines::best_subsets(
                model,
                data,
                options.selection_images,
                options.batch,
                device,
                progress,
            ) {
                Ok(subsets) => subsets,
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                // A problem in the selection split costs the best subsets, not the run.
                Err(e) => {
                    return Ok(ChosenSubsets {
                        subsets: Vec::new(),
                        from: format!("no best subsets: {e}"),
                    })
                }
            };
            Ok(ChosenSubsets {
                subsets,
                from: format!(
                    "subsets chosen on {} images of the {} split of {}",
                    options.selection_images.min(data.len()),
                    data.split,
                    data.path.display()
                ),
            })
        }
        Selection::Unavailable(why) => Ok(ChosenSubsets {
            subsets: Vec::new(),
            from: format!("no best subsets: {why}"),
        }),
    }
}

/// The sweep's points and the adaptivity measured from the same runs.
#[derive(Debug, Clone)]
pub struct Tradeoff {
    pub points: Vec<TradeoffPoint>,
    pub adaptivity: Adaptivity,
}

/// Accuracy against FLOPs on the first `options.limit` images: every scenario of
/// [`scenarios`] and the static baselines, each scored by running the base network with its
/// blocks skipped; then the oracle and the adaptivity gain of the policy at
/// `options.threshold`.
pub fn tradeoff(
    model: &BlockDrop,
    dataset: &Dataset,
    subsets: &ChosenSubsets,
    options: &TradeoffOptions,
    device: &Device,
    progress: impl FnMut(usize, usize),
) -> Result<Tradeoff> {
    let n = options
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    if n == 0 || options.batch == 0 {
        return Err(Error::BadUsage(
            "the trade-off needs at least one image and a batch of at least 1".into(),
        ));
    }
    dataset.check_labels(&model.config, n)?;
    let indices: Vec<usize> = (0..n).collect();
    let mut probs = Vec::with_capacity(n);
    for chunk in indices.chunks(options.batch) {
        let x = dataset.batch(chunk, &model.config, device)?;
        probs.extend(model.keep_probs(&x, false)?.to_vec2::<f32>()?);
    }
    let mut scenarios = scenarios(&probs, model.num_blocks(), options);
    let learned_keep = policy_bits(&probs, options.threshold);
    let first_static = scenarios.len();
    scenarios.extend(static_scenarios(
        &learned_keep,
        subsets,
        options.used_policies,
    ));
    scenarios.push(Scenario {
        method: Method::BlockDrop,
        parameter: options.threshold as f64,
        seed: None,
        include_policy_flops: true,
        keep: Keep::PerImage(learned_keep.clone()),
    });
    let correct = score(
        model,
        dataset,
        &indices,
        &scenarios,
        options.batch,
        device,
        progress,
    )?;
    let flops = BlockDropFlops::of(model);
    let labels = &dataset.labels()[..n];
    let learned_correct = correct.last().cloned().unwrap_or_default();
    let adaptivity = Adaptivity::measure(
        &Learned {
            keep: &learned_keep,
            correct: &learned_correct,
            labels,
        },
        &static_runs(
            &scenarios[first_static..scenarios.len() - 1],
            &correct[first_static..],
            &learned_keep,
        ),
        &flops,
        subsets.from.clone(),
    );
    // The operating threshold's run only feeds the gain; it is a point when the sweep lacks it.
    let sweep_has_it = options.thresholds.contains(&options.threshold);
    let scored = if sweep_has_it {
        scenarios.len() - 1
    } else {
        scenarios.len()
    };
    let mut points: Vec<TradeoffPoint> = scenarios[..scored]
        .iter()
        .zip(&correct)
        .map(|(s, correct)| point(s, correct, &flops))
        .collect();
    points.push(TradeoffPoint {
        method: Method::Oracle,
        parameter: adaptivity.oracle.mean_blocks,
        policy: None,
        seed: None,
        accuracy: adaptivity.oracle.accuracy,
        mean_blocks: adaptivity.oracle.mean_blocks,
        mean_flops: adaptivity.oracle.mean_flops,
        keep_rates: Vec::new(),
        runs_policy: true,
    });
    Ok(Tradeoff { points, adaptivity })
}

/// The adaptivity of an evaluation's `records` (the first `limit` of them): the static
/// baselines are run on the same images; the learned outcome is the records'.
pub fn adaptivity_of_records(
    model: &BlockDrop,
    dataset: &Dataset,
    records: &[Record],
    subsets: &ChosenSubsets,
    options: &TradeoffOptions,
    device: &Device,
    progress: impl FnMut(usize, usize),
) -> Result<Adaptivity> {
    if options.batch == 0 {
        return Err(Error::BadUsage(
            "the baselines need a batch of at least 1".into(),
        ));
    }
    let records = &records[..options
        .limit
        .map_or(records.len(), |l| l.min(records.len()))];
    let indices: Vec<usize> = records.iter().map(|r| r.index as usize).collect();
    let keep: Vec<Vec<bool>> = records.iter().map(|r| r.keep.clone()).collect();
    let learned_correct: Vec<bool> = records.iter().map(|r| r.correct).collect();
    let labels: Vec<u32> = records.iter().map(|r| r.label).collect();
    let scenarios = static_scenarios(&keep, subsets, options.used_policies);
    let correct = score(
        model,
        dataset,
        &indices,
        &scenarios,
        options.batch,
        device,
        progress,
    )?;
    Ok(Adaptivity::measure(
        &Learned {
            keep: &keep,
            correct: &learned_correct,
            labels: &labels,
        },
        &static_runs(&scenarios, &correct, &keep),
        &BlockDropFlops::of(model),
        subsets.from.clone(),
    ))
}
