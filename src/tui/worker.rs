//! Long work off the UI thread: evaluation, the trade-off sweep, profiling and exports run
//! here and report through a channel, so the interface never freezes.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use candle_core::Device;

use crate::data::Dataset;
use crate::eval::tradeoff::{tradeoff, TradeoffOptions, TradeoffPoint};
use crate::eval::{evaluate, EvalOptions, Record};
use crate::model::BlockDrop;
use crate::profile::{profile, ProfileOptions, ProfileReport};
use crate::report::{collect, write_report, ExportOptions};

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
    Records {
        threshold: f32,
        records: Vec<Record>,
    },
    Tradeoff(Vec<TradeoffPoint>),
    Profile(Box<ProfileReport>),
    Exported(PathBuf),
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
            .map(|records| Update::Records {
                threshold: *threshold,
                records,
            })
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
            collect(model, dataset, &options, device, |task, done, total| {
                let task = match task {
                    "evaluating" => "export: evaluating",
                    "trade-off sweep" => "export: trade-off sweep",
                    _ => "export: profiling",
                };
                send(Update::Progress { task, done, total })
            })
            .and_then(|data| write_report(&data, &options, dir))
            .map(|_| Update::Exported(dir.clone()))
        }
    };
    send(result.unwrap_or_else(|e| Update::Failed(e.to_string())));
}

/// Starts the worker thread; it ends when the request sender is dropped.
pub fn spawn(job: Job) -> (Sender<Request>, Receiver<Update>) {
    let (request_tx, request_rx) = channel::<Request>();
    let (update_tx, update_rx) = channel::<Update>();
    std::thread::spawn(move || {
        for request in request_rx {
            crate::kernels::process::on_pool(|| {
                handle(&job, &request, &mut |u| {
                    let _ = update_tx.send(u);
                })
            });
        }
    });
    (request_tx, update_rx)
}
