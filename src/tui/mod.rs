//! The interactive workbench: `blockdrop` (on a terminal) and `blockdrop tui`. State lives in
//! `app`, keys map to actions in `event`, drawing is `ui`, long work runs in `worker`.

pub mod app;
pub mod event;
pub mod ui;
pub mod views;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use ratatui::crossterm::event::{
    self as term_event, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{BlockDrop, BlockDropFlops};
use app::{App, ModelInfo};
use worker::{Job, Worker};

/// Restores the terminal however the interface ends (ratatui's panic hook covers panics).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// ratatui's panic hook restores the terminal on a panic in *any* thread. A panic off the UI
/// thread is caught by the worker and shown as an error line, so the terminal must stay in the
/// interface's mode then; only a panic on the UI thread restores it (and prints the panic).
fn keep_terminal_on_worker_panics() {
    let ui_thread = std::thread::current().id();
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            restore_and_report(info);
        }
    }));
}

/// One model the workbench can show.
pub struct LoadedModel {
    /// The file or run folder as the user named it.
    pub name: String,
    pub model: BlockDrop,
    pub untrained: bool,
}

/// What the workbench explores: one or more models on one dataset, and training run folders
/// to watch.
pub struct Workbench {
    /// The first is shown first.
    pub models: Vec<LoadedModel>,
    pub runs: Vec<PathBuf>,
    pub dataset: Dataset,
    /// The split the best static subsets are chosen on, or why there is none.
    pub selection: std::result::Result<Dataset, String>,
    pub device: Device,
}

/// Runs the interface until the user quits. Returns the time from `start` (say, the process
/// start) to the first frame.
pub fn run(workbench: Workbench, start: Instant) -> Result<Duration> {
    let Workbench {
        models,
        runs,
        dataset,
        selection,
        device,
    } = workbench;
    let infos: Vec<ModelInfo> = models
        .iter()
        .map(|m| ModelInfo {
            config: m.model.config.name.clone(),
            model_path: m.name.clone(),
            data_path: dataset.path.display().to_string(),
            device: format!("{device:?}").to_lowercase(),
            untrained: m.untrained,
            has_policy: m.model.has_policy(),
            flops: BlockDropFlops::of(&m.model),
            classes: m.model.config.class_set,
        })
        .collect();
    let Some(first) = infos.first().cloned() else {
        return Err(Error::BadUsage("the workbench needs a model".into()));
    };
    let dataset = Arc::new(dataset);
    let mut app = App::new(
        first,
        Arc::clone(&dataset),
        PathBuf::from(crate::output::DEFAULT_REPORT_DIR),
    )
    .with_models(infos, runs);
    let worker = worker::spawn(Job {
        models: models
            .into_iter()
            .map(|m| (m.name, Arc::new(m.model)))
            .collect(),
        current: std::sync::atomic::AtomicUsize::new(0),
        dataset,
        selection: Arc::new(selection),
        device,
    });
    let _ = worker.requests.send(app.initial_request());
    let terminal_error = |e: std::io::Error| Error::Report(format!("terminal: {e}"));
    let mut terminal = ratatui::try_init().map_err(terminal_error)?;
    let _restore = Restore;
    keep_terminal_on_worker_panics();
    let _ = ratatui::crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let mut images = ui::images::Images::query_terminal();
    let mut first_frame = None;
    while !app.quit {
        terminal
            .draw(|frame| ui::draw(frame, &app, &mut images))
            .map_err(terminal_error)?;
        first_frame.get_or_insert_with(|| start.elapsed());
        if term_event::poll(Duration::from_millis(50)).map_err(terminal_error)? {
            let action = match term_event::read().map_err(terminal_error)? {
                Event::Key(key) if key.kind == KeyEventKind::Press => event::action_for(key, &app),
                Event::Mouse(mouse) => event::mouse_action(mouse),
                _ => None,
            };
            if action == Some(event::Action::Cancel) {
                worker.cancel.store(true, Ordering::Relaxed);
            }
            if let Some(request) = action.and_then(|a| app.apply(a)) {
                let _ = worker.requests.send(request);
            }
        }
        while let Ok(update) = worker.updates.try_recv() {
            app.update(update);
        }
        if let Some(request) = app.follow_up() {
            let _ = worker.requests.send(request);
        }
        // A run still training appends epochs: the Runs view re-reads its folders.
        if app.tab == app::Tab::Runs {
            app.runs.refresh();
        }
    }
    // Quitting stops the task in progress and waits for it to clean up (an export removes
    // its half-built folder), so nothing half-written outlives the interface.
    worker.cancel.store(true, Ordering::Relaxed);
    let Worker {
        requests, thread, ..
    } = worker;
    drop(requests);
    if let Some(thread) = thread {
        let _ = thread.join();
    }
    Ok(first_frame.unwrap_or_default())
}
