//! The interface's state. It never draws (that is `ui/`) and never computes anything heavy
//! (that is the worker): actions change it and may return a request for the worker; updates
//! from the worker fill it in.

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::Dataset;
use crate::eval::tradeoff::Tradeoff;
use crate::profile::ProfileReport;
use crate::records::Summary;
use crate::tui::event::Action;
use crate::tui::worker::{Request, Task, Update};

pub use crate::tui::views::{
    Analysis, BlockSort, BlocksView, ClustersView, EasyHardView, ModelInfo, ModelsView,
    PoliciesView, PolicyOrder, Runs, RunsView, Tab,
};

pub struct App {
    pub tab: Tab,
    pub info: ModelInfo,
    /// Every model loaded (`info` is `models[current]`).
    pub models: Vec<ModelInfo>,
    pub current: usize,
    /// The loaded models side by side (computed when the Models view first opens).
    pub comparison: Option<crate::compare::Comparison>,
    pub models_view: ModelsView,
    pub runs: Runs,
    pub runs_view: RunsView,
    pub dataset: Arc<Dataset>,
    pub analysis: Option<Analysis>,
    /// The first evaluation (threshold 0.5): the model's own point and accuracy.
    pub baseline: Option<Summary>,
    /// The sweep and the adaptivity, and the threshold they were measured at.
    pub tradeoff: Option<(f32, Tradeoff)>,
    /// The sweep was asked for (it starts by itself once the first evaluation is in).
    sweep_requested: bool,
    /// The comparison was asked for (it starts when the Models view opens, or once the
    /// worker is free while the view is open).
    compare_requested: bool,
    pub profile: Option<ProfileReport>,
    /// The task in progress and how far it is.
    pub busy: Option<(Task, usize, usize)>,
    /// Each view's own cursor and settings, kept while another view is open.
    pub blocks_view: BlocksView,
    pub policies_view: PoliciesView,
    pub clusters_view: ClustersView,
    pub easy_hard_view: EasyHardView,
    pub threshold: f32,
    pub show_help: bool,
    pub message: Option<String>,
    pub quit: bool,
    pub export_dir: PathBuf,
}

impl App {
    pub fn new(info: ModelInfo, dataset: Arc<Dataset>, export_dir: PathBuf) -> Self {
        Self {
            tab: Tab::Overview,
            models: vec![info.clone()],
            current: 0,
            comparison: None,
            models_view: ModelsView::default(),
            runs: Runs::default(),
            runs_view: RunsView::default(),
            info,
            dataset,
            analysis: None,
            baseline: None,
            tradeoff: None,
            sweep_requested: false,
            compare_requested: false,
            profile: None,
            busy: Some((Task::Work(crate::study::Phase::Evaluating), 0, 1)),
            blocks_view: BlocksView::default(),
            policies_view: PoliciesView::default(),
            clusters_view: ClustersView::default(),
            easy_hard_view: EasyHardView::default(),
            threshold: crate::model::DEFAULT_THRESHOLD,
            show_help: false,
            message: None,
            quit: false,
            export_dir,
        }
    }

    /// The first request: evaluate at the default threshold.
    pub fn initial_request(&self) -> Request {
        Request::Evaluate {
            threshold: self.threshold,
        }
    }

    /// Record positions the Policies view lists, in its order, after the class filter.
    pub fn policy_rows(&self) -> Vec<usize> {
        let Some(a) = &self.analysis else {
            return vec![];
        };
        let filter = self.policies_view.filter.to_lowercase();
        let mut rows: Vec<usize> = (0..a.records.len())
            .filter(|&i| {
                filter.is_empty()
                    || self
                        .info
                        .classes
                        .name(a.records[i].label)
                        .to_lowercase()
                        .contains(&filter)
            })
            .collect();
        match self.policies_view.order {
            PolicyOrder::Blocks => rows.sort_by_key(|&i| (a.records[i].blocks, i)),
            PolicyOrder::Class => {
                rows.sort_by_key(|&i| (a.records[i].label, a.records[i].blocks, i))
            }
        }
        rows
    }

    /// Block `k`'s measured median time in µs, once the model has been profiled.
    pub fn block_time(&self, k: usize) -> Option<f64> {
        self.profile
            .as_ref()?
            .stages
            .iter()
            .find(|s| s.stage == crate::exec::Stage::Block(k))
            .map(|s| s.median_us)
    }

    /// Block indices in the Blocks view's order.
    pub fn block_rows(&self) -> Vec<usize> {
        let Some(a) = &self.analysis else {
            return vec![];
        };
        let mut rows: Vec<usize> = (0..a.keep_rates.len()).collect();
        let time = |k: usize| self.block_time(k).unwrap_or(0.0);
        match self.blocks_view.sort {
            BlockSort::Index => {}
            BlockSort::KeepRate => {
                rows.sort_by(|&x, &y| a.keep_rates[y].total_cmp(&a.keep_rates[x]))
            }
            BlockSort::Flops => {
                rows.sort_by_key(|&k| std::cmp::Reverse(self.info.flops.base.blocks[k]))
            }
            BlockSort::Time => rows.sort_by(|&x, &y| time(y).total_cmp(&time(x))),
        }
        rows
    }

    /// How many rows `tab`'s view selects among.
    fn row_count(&self, tab: Tab) -> usize {
        match tab {
            Tab::Blocks => self.block_rows().len(),
            Tab::Policies => self.policy_rows().len(),
            Tab::Clusters => self.analysis.as_ref().map_or(0, |a| a.clusters.len()),
            Tab::EasyHard => self
                .analysis
                .as_ref()
                .map_or(0, |a| a.records.len().min(20)),
            Tab::Models => self.models.len(),
            Tab::Runs => self.runs.dirs.len(),
            Tab::Overview | Tab::Tradeoff => 0,
        }
    }

    /// How many members the Clusters view's selected cluster has.
    fn member_count(&self) -> usize {
        self.analysis
            .as_ref()
            .and_then(|a| a.clusters.get(self.clusters_view.selected))
            .map_or(0, |c| c.members.len())
    }

    /// The selected row of `tab`'s view; `None` for views without rows.
    fn cursor_mut(&mut self, tab: Tab) -> Option<&mut usize> {
        match tab {
            Tab::Blocks => Some(&mut self.blocks_view.selected),
            Tab::Policies => Some(&mut self.policies_view.selected),
            Tab::Clusters => Some(&mut self.clusters_view.selected),
            Tab::EasyHard => Some(&mut self.easy_hard_view.selected),
            Tab::Models => Some(&mut self.models_view.selected),
            Tab::Runs => Some(&mut self.runs_view.selected),
            Tab::Overview | Tab::Tradeoff => None,
        }
    }

    /// Moves the current view's cursor by `step` rows (negative: up), within its rows. A
    /// newly selected cluster shows from its first member.
    fn move_cursor(&mut self, step: isize) {
        let (tab, last) = (self.tab, self.row_count(self.tab).saturating_sub(1));
        let Some(selected) = self.cursor_mut(tab) else {
            return;
        };
        let before = *selected;
        *selected = if step < 0 {
            before.saturating_sub(step.unsigned_abs())
        } else {
            (before + step as usize).min(last)
        };
        if tab == Tab::Clusters && *selected != before {
            self.clusters_view.member = 0;
        }
    }

    /// Keeps every cursor within its view's rows, and the cluster member within its cluster,
    /// when a new analysis changes them.
    fn clamp_cursors(&mut self) {
        for tab in Tab::ALL {
            let last = self.row_count(tab).saturating_sub(1);
            if let Some(selected) = self.cursor_mut(tab) {
                *selected = (*selected).min(last);
            }
        }
        self.clusters_view.member = self
            .clusters_view
            .member
            .min(self.member_count().saturating_sub(1));
    }

    /// The current view's next sort column (Blocks) or order (Policies, from its first row).
    fn cycle_sort(&mut self) {
        match self.tab {
            Tab::Blocks => {
                self.blocks_view.sort = match self.blocks_view.sort {
                    BlockSort::Index => BlockSort::KeepRate,
                    BlockSort::KeepRate => BlockSort::Flops,
                    BlockSort::Flops => BlockSort::Time,
                    BlockSort::Time => BlockSort::Index,
                }
            }
            Tab::Policies => {
                let view = &mut self.policies_view;
                view.order = match view.order {
                    PolicyOrder::Blocks => PolicyOrder::Class,
                    PolicyOrder::Class => PolicyOrder::Blocks,
                };
                view.selected = 0;
            }
            _ => {}
        }
    }

    /// Several models to explore (the first is `info`'s), and run folders to watch.
    pub fn with_models(mut self, models: Vec<ModelInfo>, runs: Vec<PathBuf>) -> Self {
        if !models.is_empty() {
            self.info = models[0].clone();
            self.models = models;
        }
        self.runs.dirs = runs;
        self
    }

    /// Shows model `m` in every view: its evaluation starts afresh.
    fn select_model(&mut self, m: usize) -> Option<Request> {
        if m >= self.models.len() || m == self.current {
            return None;
        }
        if self.busy.is_some() {
            self.message = Some("busy: try again when the current task ends".into());
            return None;
        }
        self.current = m;
        self.info = self.models[m].clone();
        self.analysis = None;
        self.baseline = None;
        self.tradeoff = None;
        self.profile = None;
        self.sweep_requested = false;
        let request = Request::Select {
            model: m,
            threshold: self.threshold,
        };
        self.busy = Some((request.task(), 0, 1));
        Some(request)
    }

    fn switch(&mut self, tab: Tab) -> Option<Request> {
        // Each view keeps its own cursor: nothing to reset.
        self.tab = tab;
        if tab == Tab::Runs {
            self.runs.refresh();
        }
        if tab == Tab::Models && self.comparison.is_none() && self.busy.is_none() {
            return Some(self.start_compare());
        }
        // The trade-off is computed the first time its tab is opened.
        if tab == Tab::Tradeoff && self.tradeoff.is_none() && self.busy.is_none() {
            Some(self.start_sweep())
        } else {
            None
        }
    }

    /// The sweep (trade-off, static baselines, adaptivity) at the current threshold.
    fn start_sweep(&mut self) -> Request {
        self.sweep_requested = true;
        let request = Request::Tradeoff {
            threshold: self.threshold,
        };
        self.busy = Some((request.task(), 0, 1));
        request
    }

    fn start_compare(&mut self) -> Request {
        self.compare_requested = true;
        let request = Request::Compare {
            threshold: self.threshold,
        };
        self.busy = Some((request.task(), 0, 1));
        request
    }

    /// Work that follows by itself when the worker is free: once the first evaluation is in,
    /// the sweep, so the Overview shows the adaptivity gain without a key press; and the
    /// comparison, when the Models view waits for it. Each once: after a failure or cancel,
    /// opening the view asks again.
    pub fn follow_up(&mut self) -> Option<Request> {
        if self.busy.is_some() {
            return None;
        }
        if self.analysis.is_some() && !self.sweep_requested {
            return Some(self.start_sweep());
        }
        (self.tab == Tab::Models && self.comparison.is_none() && !self.compare_requested)
            .then(|| self.start_compare())
    }

    /// Applies a user action; returns work for the worker, if any.
    pub fn apply(&mut self, action: Action) -> Option<Request> {
        self.message = None;
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.show_help = !self.show_help,
            Action::NextTab => {
                return self.switch(Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()])
            }
            Action::PrevTab => {
                return self
                    .switch(Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()])
            }
            Action::Tab(n) => return Tab::ALL.get(n).copied().and_then(|t| self.switch(t)),
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.move_cursor(-10),
            Action::PageDown => self.move_cursor(10),
            Action::Left | Action::Right if self.tab == Tab::Tradeoff => {
                let step = if action == Action::Right { 0.05 } else { -0.05 };
                self.threshold = ((self.threshold + step) * 100.0).round().clamp(5.0, 95.0) / 100.0;
                if self.busy.is_none() {
                    self.busy = Some((Task::Work(crate::study::Phase::Evaluating), 0, 1));
                    return Some(Request::Evaluate {
                        threshold: self.threshold,
                    });
                }
                self.message = Some("busy: try again when the current task ends".into());
            }
            Action::Left if self.tab == Tab::Clusters => {
                self.clusters_view.member = self.clusters_view.member.saturating_sub(1)
            }
            Action::Right if self.tab == Tab::Clusters => {
                let last = self.member_count().saturating_sub(1);
                self.clusters_view.member = (self.clusters_view.member + 1).min(last)
            }
            Action::Left | Action::Right => {}
            Action::Sort => self.cycle_sort(),
            Action::NextModel => {
                return self.select_model((self.current + 1) % self.models.len().max(1))
            }
            Action::Choose if self.tab == Tab::Models => {
                return self.select_model(self.models_view.selected)
            }
            Action::Choose => {}
            Action::Filter => {
                if self.tab == Tab::Policies {
                    self.policies_view.typing_filter = true;
                    self.policies_view.filter.clear();
                }
            }
            Action::Type(c) => {
                self.policies_view.filter.push(c);
                self.policies_view.selected = 0;
            }
            Action::Backspace => {
                self.policies_view.filter.pop();
            }
            Action::EndTyping => self.policies_view.typing_filter = false,
            Action::Profile | Action::Export if self.busy.is_some() => {
                self.message = Some("busy: try again when the current task ends".into());
            }
            Action::Profile => {
                self.busy = Some((Request::Profile.task(), 0, 1));
                return Some(Request::Profile);
            }
            Action::Export => {
                let request = Request::Export(self.export_dir.clone());
                self.busy = Some((request.task(), 0, 1));
                return Some(request);
            }
            Action::Cancel => {
                if self.busy.is_some() {
                    self.message = Some("cancelling…".into());
                }
            }
        }
        None
    }

    /// Takes in what the worker reports.
    pub fn update(&mut self, update: Update) {
        match update {
            Update::Progress { task, done, total } => self.busy = Some((task, done, total)),
            Update::Analysed(analysis) => {
                let analysis = *analysis;
                if self.baseline.is_none() {
                    self.baseline = Some(analysis.summary.clone());
                }
                self.analysis = Some(analysis);
                self.clamp_cursors();
                self.busy = None;
            }
            Update::Tradeoff {
                threshold,
                tradeoff,
            } => {
                self.tradeoff = Some((threshold, *tradeoff));
                self.busy = None;
            }
            Update::Compared(comparison) => {
                self.comparison = Some(*comparison);
                self.busy = None;
            }
            Update::Profile(report) => {
                self.profile = Some(*report);
                self.busy = None;
                self.message = Some("profile ready: the Blocks view shows measured times".into());
            }
            Update::Exported(dir) => {
                self.busy = None;
                self.message = Some(format!("report written to {}", dir.display()));
            }
            Update::Cancelled => {
                self.busy = None;
                self.message = Some("cancelled".into());
            }
            Update::Failed(error) => {
                self.busy = None;
                self.message = Some(format!("failed: {error}"));
            }
        }
    }
}
