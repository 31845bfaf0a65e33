//! Long work off the UI thread: evaluation, the trade-off sweep, profiling and exports run
//! here and report through a channel, so the interface never freezes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::Device;

use crate::data::Dataset;
use crate::eval::baselines::Selection;
use crate::eval::tradeoff::Tradeoff;
use crate::eval::EvalOptions;
use crate::model::BlockDrop;
use crate::profile::ProfileReport;
use crate::report::{write_report, ReportData};
use crate::study::{self, Phase};
use crate::tui::app::Analysis;

/// Work the interface asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Evaluate {
        threshold: f32,
    },
    /// The sweep, with the static baselines and the gain measured at `threshold`.
    Tradeoff {
        threshold: f32,
    },
    /// Show model `model` (of those loaded) in the views: evaluate it at `threshold`.
    Select {
        model: usize,
        threshold: f32,
    },
    /// Every loaded model side by side, each at `threshold`.
    Compare {
        threshold: f32,
    },
    Profile,
    Export(PathBuf),
}

/// What the worker is busy with, as the status line names it: a step of the pipeline, on its
/// own or as part of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Work(Phase),
    Export(Phase),
}

impl Task {
    /// The step under way.
    pub fn phase(self) -> Phase {
        match self {
            Task::Work(phase) | Task::Export(phase) => phase,
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Work(phase) => write!(f, "{phase}"),
            Task::Export(phase) => write!(f, "export: {phase}"),
        }
    }
}

impl Request {
    /// The task a request starts with.
    pub fn task(&self) -> Task {
        match self {
            Request::Evaluate { .. } | Request::Select { .. } => Task::Work(Phase::Evaluating),
            Request::Compare { .. } => Task::Work(Phase::EvaluatingModels),
            Request::Tradeoff { .. } => Task::Work(Phase::ChoosingSubsets),
            Request::Profile => Task::Work(Phase::Profiling),
            Request::Export(_) => Task::Export(Phase::Evaluating),
        }
    }
}

/// What the worker reports back.
#[derive(Debug)]
pub enum Update {
    Progress {
        task: Task,
        done: usize,
        total: usize,
    },
    /// An evaluation, analysed here (clusters, per-class tables) so the interface never
    /// computes.
    Analysed(Box<Analysis>),
    Tradeoff {
        threshold: f32,
        tradeoff: Box<Tradeoff>,
    },
    Profile(Box<ProfileReport>),
    Compared(Box<crate::compare::Comparison>),
    Exported(PathBuf),
    /// The task stopped at the user's request (nothing half-written is left).
    Cancelled,
    Failed(String),
}

/// What the worker works on.
pub struct Job {
    /// Every model loaded, with its name; `current` is the one the views show.
    pub models: Vec<(String, Arc<BlockDrop>)>,
    pub current: AtomicUsize,
    pub dataset: Arc<Dataset>,
    /// The split the best static subsets are chosen on, or why there is none.
    pub selection: Arc<std::result::Result<Dataset, String>>,
    pub device: Device,
}

impl Job {
    /// A job with one model.
    pub fn single(
        name: String,
        model: BlockDrop,
        dataset: Arc<Dataset>,
        selection: std::result::Result<Dataset, String>,
        device: Device,
    ) -> Job {
        Job {
            models: vec![(name, Arc::new(model))],
            current: AtomicUsize::new(0),
            dataset,
            selection: Arc::new(selection),
            device,
        }
    }
}

/// Carries out one request, sending progress and the result through `send`.
pub fn handle(job: &Job, request: &Request, send: &mut dyn FnMut(Update)) {
    if let Request::Select { model, .. } = request {
        job.current.store(
            (*model).min(job.models.len().saturating_sub(1)),
            Ordering::Relaxed,
        );
    }
    let current = job.current.load(Ordering::Relaxed);
    let Some((_, model)) = job.models.get(current) else {
        return send(Update::Failed("no model loaded".into()));
    };
    let export = matches!(request, Request::Export(_));
    let mut progress = |phase: Phase, done: usize, total: usize| {
        let task = if export {
            Task::Export(phase)
        } else {
            Task::Work(phase)
        };
        send(Update::Progress { task, done, total })
    };
    let result = run(job, model, request, &mut progress);
    send(match result {
        Ok(update) => update,
        Err(crate::error::Error::Cancelled) => Update::Cancelled,
        Err(e) => Update::Failed(e.to_string()),
    });
}

/// One request's work on `model`, through the study's steps and presets.
fn run(
    job: &Job,
    model: &BlockDrop,
    request: &Request,
    progress: &mut dyn FnMut(Phase, usize, usize),
) -> crate::error::Result<Update> {
    let (dataset, device) = (&*job.dataset, &job.device);
    let preset = study::Options::default();
    match request {
        Request::Evaluate { threshold } | Request::Select { threshold, .. } => {
            let options = EvalOptions {
                threshold: *threshold,
                ..preset.eval
            };
            let records = study::evaluate(model, dataset, &options, device, progress)?;
            Ok(Update::Analysed(Box::new(Analysis::new(
                *threshold, records,
            )?)))
        }
        Request::Tradeoff { threshold } => {
            let options = crate::eval::tradeoff::TradeoffOptions {
                threshold: *threshold,
                ..preset.tradeoff
            };
            let selection = Selection::of(dataset, &job.selection)?;
            let tradeoff = study::sweep(model, dataset, &selection, &options, device, progress)?;
            Ok(Update::Tradeoff {
                threshold: *threshold,
                tradeoff: Box::new(tradeoff),
            })
        }
        Request::Compare { threshold } => {
            let entries = job
                .models
                .iter()
                .map(|(name, model)| crate::compare::Entry {
                    name: name.clone(),
                    model: Ok(Arc::clone(model)),
                    run: None,
                })
                .collect();
            let selection = Selection::of(dataset, &job.selection)?;
            let defaults = crate::compare::CompareOptions::default();
            let options = crate::compare::CompareOptions {
                eval: EvalOptions {
                    threshold: *threshold,
                    ..defaults.eval.clone()
                },
                ..defaults
            };
            let comparison =
                crate::compare::compare(entries, dataset, &selection, &options, device, progress)?;
            Ok(Update::Compared(Box::new(comparison)))
        }
        Request::Profile => {
            let options = preset.profile.clone().unwrap_or_default();
            let report = study::profile(model, dataset, &options, device, progress)?;
            Ok(Update::Profile(Box::new(report)))
        }
        Request::Export(dir) => {
            // The folder is checked before the work, and again when the report moves in.
            crate::output::check_report_target(dir)?;
            let selection = Selection::of(dataset, &job.selection)?;
            let study = study::run(model, dataset, &selection, &preset, device, progress)?;
            let data = ReportData {
                study,
                models: None,
            };
            write_report(&data, &preset, dir)?;
            Ok(Update::Exported(dir.clone()))
        }
    }
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// The running worker: where to send requests, where updates arrive, the flag that cancels
/// the request in progress, and the thread (joined to wait for a cancelled task's cleanup).
pub struct Worker {
    pub requests: Sender<Request>,
    pub updates: Receiver<Update>,
    pub cancel: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
}

/// Starts the worker thread; it ends when the request sender is dropped. A panic in a request
/// reaches the interface as a failure, and the worker goes on serving the next request.
pub fn spawn(job: Job) -> Worker {
    let (request_tx, request_rx) = channel::<Request>();
    let (update_tx, update_rx) = channel::<Update>();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("blockdrop-worker".into())
        .spawn(move || {
            for request in request_rx {
                flag.store(false, Ordering::Relaxed);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::process::on_pool(|| {
                        crate::cancel::scope(&flag, || {
                            handle(&job, &request, &mut |u| {
                                let _ = update_tx.send(u);
                            })
                        })
                    })
                }));
                if let Err(payload) = outcome {
                    let _ = update_tx.send(Update::Failed(format!(
                        "internal error while {}: {}",
                        describe(&request),
                        panic_text(payload.as_ref())
                    )));
                }
            }
        })
        .ok();
    Worker {
        requests: request_tx,
        updates: update_rx,
        cancel,
        thread,
    }
}

fn describe(request: &Request) -> &'static str {
    match request {
        Request::Evaluate { .. } | Request::Select { .. } => "evaluating",
        Request::Compare { .. } => "comparing the models",
        Request::Tradeoff { .. } => "sweeping the trade-off",
        Request::Profile => "profiling",
        Request::Export(_) => "exporting",
    }
}
