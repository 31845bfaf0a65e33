//! Several models on the same data, side by side (`blockdrop compare`, the report's Models
//! section, the workbench's Models view): each model's four lines, the full network's
//! accuracy with the same weights, its threshold sweep and adaptivity, and batch-1 latency,
//! plus how often the models choose the same blocks. One decoded batch feeds every model's
//! evaluation, so k models cost about k evaluations.

pub mod agreement;

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::config::Transform;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::baselines::Selection;
use crate::eval::tradeoff::{Tradeoff, TradeoffOptions};
use crate::eval::{evaluate_batch, EvalOptions};
use crate::exec::forward_batch;
use crate::model::{BlockDrop, BlockDropFlops};
use crate::profile::cost::{CostTable, PredictedLatency};
use crate::profile::{ImageLatencySummary, ProfileOptions, ProfileReport};
use crate::records::{Record, Summary};
use crate::runs::RunFolder;
use crate::stats::argmax;
use crate::study::{self, Phase};

pub use agreement::{agreement, Agreement};

/// Images the per-model sweep (thresholds, static baselines) uses in a comparison.
pub const COMPARE_SWEEP_IMAGES: usize = 200;

/// One model to compare, as the user named it.
pub struct Entry {
    /// The file or run folder's name.
    pub name: String,
    /// The model, or why it could not be loaded.
    pub model: std::result::Result<Arc<BlockDrop>, String>,
    /// The run folder, when the user named one.
    pub run: Option<RunFolder>,
}

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub eval: EvalOptions,
    pub tradeoff: TradeoffOptions,
    /// Measure each model's static baselines and adaptivity gain (the costly part: the
    /// best-subset search and one run per static policy). Without, the sweep is the
    /// thresholds only.
    pub adaptivity: bool,
    /// `None` skips profiling.
    pub profile: Option<ProfileOptions>,
    /// A cost table: each model of its configuration gets a predicted latency.
    pub cost: Option<CostTable>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            eval: EvalOptions {
                batch: 64,
                ..EvalOptions::default()
            },
            tradeoff: TradeoffOptions {
                limit: Some(COMPARE_SWEEP_IMAGES),
                matched_baselines: false,
                ..TradeoffOptions::default()
            },
            adaptivity: true,
            profile: Some(study::REPORT_PROFILE),
            cost: None,
        }
    }
}

/// One model's results.
#[derive(Debug, Clone)]
pub struct Compared {
    pub name: String,
    pub config: String,
    pub records: Vec<Record>,
    pub summary: Summary,
    /// Every block kept, same weights, same images.
    pub full_accuracy: f64,
    /// The base network's FLOPs with every block (no policy network).
    pub full_flops: f64,
    pub tradeoff: Tradeoff,
    /// Whether `tradeoff` holds the static baselines (else its adaptivity is not measured).
    pub adaptivity: bool,
    pub profile: Option<ProfileReport>,
    pub run: Option<RunFolder>,
    /// The cost table, when one was given for this model's configuration.
    pub cost: Option<CostTable>,
    /// Blocks per segment of the base network.
    pub segments: Vec<usize>,
    /// Fraction of `records` that keep each block.
    pub keep_rates: Vec<f64>,
}

impl Compared {
    /// The adaptivity gain at equal blocks, when measured.
    pub fn gain(&self) -> Option<f64> {
        self.tradeoff
            .adaptivity
            .gain
            .blocks
            .filter(|_| self.adaptivity)
    }

    /// Mean FLOPs (policy network included) as a share of the full base network's.
    pub fn flops_share(&self) -> f64 {
        self.summary.flops_mean / self.full_flops
    }

    pub fn latency(&self) -> Option<ImageLatencySummary> {
        self.profile.as_ref().map(ProfileReport::image_latency)
    }

    /// Mean kept blocks in each segment of the base network.
    pub fn blocks_per_segment(&self) -> Vec<f64> {
        let rates = &self.keep_rates;
        let mut start = 0;
        self.segments
            .iter()
            .map(|&n| {
                let end = (start + n).min(rates.len());
                let kept = rates[start.min(end)..end].iter().sum();
                start = end;
                kept
            })
            .collect()
    }

    /// The latency the cost table predicts at this model's keep rates.
    pub fn predicted(&self) -> Option<PredictedLatency> {
        let table = self.cost.as_ref()?;
        Some(PredictedLatency::of(table, &self.keep_rates))
    }
}

/// A model that could not be compared, and why.
#[derive(Debug, Clone)]
pub struct Failed {
    pub name: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<std::result::Result<Compared, Failed>>,
    pub images: usize,
}

impl Comparison {
    pub fn compared(&self) -> impl Iterator<Item = &Compared> {
        self.rows.iter().filter_map(|r| r.as_ref().ok())
    }
}

/// Compares `entries` on `dataset`; a model that fails keeps its row with the reason, and
/// the others go on. `progress(phase, done, total)`, with [`Phase::EvaluatingModels`], then
/// [`Phase::Model`] for each model.
pub fn compare(
    entries: Vec<Entry>,
    dataset: &Dataset,
    selection: &Selection,
    options: &CompareOptions,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Comparison> {
    let total = options
        .eval
        .limit
        .map_or(dataset.len(), |l| l.min(dataset.len()));
    if total == 0 || options.eval.batch == 0 {
        return Err(Error::bad_input(
            &dataset.path,
            format!("the {} split holds no images to compare on", dataset.split),
        ));
    }
    let mut states: Vec<State> = entries
        .into_iter()
        .map(|e| State {
            outcome: match e.model {
                Ok(model) => match dataset.check_labels(&model.config, total) {
                    Ok(()) => Ok(model),
                    Err(err) => Err(err.to_string()),
                },
                Err(err) => Err(err),
            },
            name: e.name,
            run: e.run,
            records: Vec::with_capacity(total),
            full_correct: 0,
        })
        .collect();
    evaluate_all(
        &mut states,
        dataset,
        total,
        &options.eval,
        device,
        |d, t| progress(Phase::EvaluatingModels, d, t),
    )?;
    let mut rows = Vec::with_capacity(states.len());
    for (m, state) in states.into_iter().enumerate() {
        let model = match state.outcome {
            Ok(model) => model,
            Err(error) => {
                rows.push(Err(Failed {
                    name: state.name,
                    error,
                }));
                continue;
            }
        };
        let finished = finish(
            &model,
            &state.records,
            dataset,
            selection,
            options,
            device,
            |d, t| progress(Phase::Model(m), d, t),
        )
        .and_then(|(tradeoff, profile)| {
            let keep_rates = crate::analysis::keep_rates(&state.records)?;
            Ok((tradeoff, profile, keep_rates))
        });
        rows.push(match finished {
            Ok((tradeoff, profile, keep_rates)) => Ok(Compared {
                name: state.name,
                config: model.config.name.clone(),
                summary: Summary::of(&state.records),
                full_accuracy: state.full_correct as f64 / total as f64,
                full_flops: BlockDropFlops::of(&model).base.full() as f64,
                records: state.records,
                tradeoff,
                // A base network alone has no policy whose adaptivity could be measured.
                adaptivity: options.adaptivity && model.has_policy(),
                profile,
                run: state.run,
                segments: model.config.base.layers.clone(),
                cost: options.cost.clone().filter(|t| t.describes(&model.config)),
                keep_rates,
            }),
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => Err(Failed {
                name: state.name,
                error: e.to_string(),
            }),
        });
    }
    Ok(Comparison {
        rows,
        images: total,
    })
}

/// What decides a decoded tensor: the input shape and the transform.
type InputKey = ((usize, usize, usize), Transform);

/// A model's progress through the shared evaluation.
struct State {
    name: String,
    outcome: std::result::Result<Arc<BlockDrop>, String>,
    run: Option<RunFolder>,
    records: Vec<Record>,
    full_correct: usize,
}

/// Every model's records and full-network hits, one decoded batch at a time: models whose
/// configurations transform images alike share the decoded tensor.
fn evaluate_all(
    states: &mut [State],
    dataset: &Dataset,
    total: usize,
    options: &EvalOptions,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<()> {
    let indices: Vec<usize> = (0..total).collect();
    let labels = dataset.labels();
    for chunk in indices.chunks(options.batch) {
        let mut decoded: Vec<(InputKey, Tensor)> = Vec::new();
        for state in states.iter_mut() {
            let Ok(model) = &state.outcome else { continue };
            let key = (model.config.input, model.config.transform.clone());
            let result = match decoded.iter().find(|(k, _)| *k == key) {
                Some((_, x)) => Ok(x.clone()),
                None => dataset.batch(chunk, &model.config, device).inspect(|x| {
                    decoded.push((key, x.clone()));
                }),
            }
            .and_then(|x| one_batch(model, &x, chunk, labels, options));
            match result {
                Ok((records, full)) => {
                    state.records.extend(records);
                    state.full_correct += full;
                }
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => state.outcome = Err(e.to_string()),
            }
        }
        progress(chunk[chunk.len() - 1] + 1, total);
        crate::cancel::check()?;
    }
    Ok(())
}

/// One batch's records, and how many of its images the full network gets right.
fn one_batch(
    model: &BlockDrop,
    x: &Tensor,
    chunk: &[usize],
    labels: &[u32],
    options: &EvalOptions,
) -> Result<(Vec<Record>, usize)> {
    let flops = BlockDropFlops::of(model);
    let records = evaluate_batch(model, x, chunk, labels, &flops, options)?;
    let every = vec![vec![true; model.num_blocks()]; chunk.len()];
    let logits = forward_batch(&model.resnet, x, &every)?.to_vec2::<f32>()?;
    let full = logits
        .iter()
        .zip(chunk)
        .filter(|(l, &i)| argmax(l) == labels[i])
        .count();
    Ok((records, full))
}

/// A model's sweep (with static baselines and adaptivity) and profile.
fn finish(
    model: &BlockDrop,
    records: &[Record],
    dataset: &Dataset,
    selection: &Selection,
    options: &CompareOptions,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Tradeoff, Option<ProfileReport>)> {
    let mut tradeoff_options = TradeoffOptions {
        threshold: options.eval.threshold,
        // Never beyond the images the comparison itself covers.
        limit: Some(
            options
                .tradeoff
                .limit
                .map_or(records.len(), |l| l.min(records.len())),
        ),
        ..options.tradeoff.clone()
    };
    let skipped = Selection::Unavailable("not measured".into());
    let selection = if options.adaptivity {
        selection
    } else {
        tradeoff_options.used_policies = 0;
        &skipped
    };
    // The model's own phases are reported as its position in the comparison.
    let sweep = study::sweep(
        model,
        dataset,
        selection,
        &tradeoff_options,
        device,
        |_, d, t| progress(d, t),
    )?;
    // A profile that fails leaves the row without latency, not without its results.
    let profile = match &options.profile {
        Some(p) if !records.is_empty() => {
            match crate::profile::profile(model, dataset, p, device) {
                Ok(report) => Some(report),
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(_) => None,
            }
        }
        _ => None,
    };
    Ok((sweep, profile))
}

/// The shipped models (the default and the other finetuned ones, from the binary) compared
/// on `dataset`: evaluation, full network, threshold sweep and latency; their adaptivity is
/// left to `blockdrop compare`, to keep `--export` quick.
pub fn shipped_models(
    dataset: &Dataset,
    device: &Device,
    mut progress: impl FnMut(Phase, usize, usize),
) -> Result<Comparison> {
    let entries = crate::bundled::shipped_models(device)
        .into_iter()
        .map(|(path, loaded)| Entry {
            name: crate::runs::display_name(std::path::Path::new(path)),
            model: loaded.map(|l| Arc::new(l.model)).map_err(|e| e.to_string()),
            run: None,
        })
        .collect();
    let options = CompareOptions {
        adaptivity: false,
        ..CompareOptions::default()
    };
    compare(
        entries,
        dataset,
        &Selection::Unavailable("not measured".into()),
        &options,
        device,
        |_, d, t| progress(Phase::ShippedModels, d, t),
    )
}
