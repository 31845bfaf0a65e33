//! Long work off the UI thread: evaluation, the trade-off sweep, profiling and exports run
//! here and report through a channel, so the interface never freezes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::Device;

use crate::data::Dataset;
use crate::eval::tradeoff::{tradeoff, TradeoffOptions, TradeoffPoint};
use crate::eval::{evaluate, EvalOptions};
use crate::model::BlockDrop;
use crate::profile::{profile, ProfileOptions, ProfileReport};
use crate::report::{collect, write_report, ExportOptions};
use crate::tui::app::Analysis;

/// Work the interface asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Evaluate { threshold: f32 },
    Tradeoff,
    Profile,
    Export(PathBuf),
}

/// What the worker reports back.
#[derive(Debug)]
pub enum Update {
    Progress {
        task: &'static str,
        done: usize,
        total: usize,
    },
    /// An evaluation, analysed here (clusters, per-class tables) so the interface never
    /// computes.
    Analysed(Box<Analysis>),
    Tradeoff(Vec<TradeoffPoint>),
    Profile(Box<ProfileReport>),
    Exported(PathBuf),
    /// The task stopped at the user's request (nothing half-written is left).
    Cancelled,
    Failed(String),
}

/// What the worker works on.
pub struct Job {
    pub model: Arc<BlockDrop>,
    pub dataset: Arc<Dataset>,
    pub device: Device,
}

/// Carries out one request, sending progress and the result through `send`.
pub fn handle(job: &Job, request: &Request, send: &mut dyn FnMut(Update)) {
    let (model, dataset, device) = (&*job.model, &*job.dataset, &job.device);
    let result = match request {
        Request::Evaluate { threshold } => {
            let options = EvalOptions {
                threshold: *threshold,
                keep_logits: true,
                ..EvalOptions::default()
            };
            evaluate(model, dataset, &options, device, |done, total| {
                send(Update::Progress {
                    task: "evaluating",
                    done,
                    total,
                })
            })
            .map(|records| Update::Analysed(Box::new(Analysis::new(*threshold, records))))
        }
        Request::Tradeoff => {
            let options = TradeoffOptions {
                limit: Some(500),
                ..TradeoffOptions::default()
            };
            tradeoff(model, dataset, &options, device, |done, total| {
                send(Update::Progress {
                    task: "trade-off sweep",
                    done,
                    total,
                })
            })
            .map(Update::Tradeoff)
        }
        Request::Profile => {
            send(Update::Progress {
                task: "profiling",
                done: 0,
                total: 1,
            });
            let options = ProfileOptions {
                images: 8,
                repeat: 5,
                ..ProfileOptions::default()
            };
            profile(model, dataset, &options, device).map(|p| Update::Profile(Box::new(p)))
        }
        Request::Export(dir) => {
            let options = ExportOptions::default();
            // The folder is checked before the work, and again when the report moves in.
            crate::output::check_report_target(dir)
                .and_then(|_| {
                    collect(model, dataset, &options, device, |task, done, total| {
                        let task = match task {
                            "evaluating" => "export: evaluating",
                            "trade-off sweep" => "export: trade-off sweep",
                            _ => "export: profiling",
                        };
                        send(Update::Progress { task, done, total })
                    })
                })
                .and_then(|data| write_report(&data, &options, dir))
                .map(|_| Update::Exported(dir.clone()))
        }
    };
    send(match result {
        Ok(update) => update,
        Err(crate::error::Error::Cancelled) => Update::Cancelled,
        Err(e) => Update::Failed(e.to_string()),
    });
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
                    crate::kernels::process::on_pool(|| {
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
        Request::Evaluate { .. } => "evaluating",
        Request::Tradeoff => "sweeping the trade-off",
        Request::Profile => "profiling",
        Request::Export(_) => "exporting",
    }
}
