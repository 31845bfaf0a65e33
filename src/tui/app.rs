//! The interface's state. It never draws (that is `ui/`) and never computes anything heavy
//! (that is the worker): actions change it and may return a request for the worker; updates
//! from the worker fill it in.

use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::{self, ClassRow, Cluster};
use crate::data::Dataset;
use crate::eval::tradeoff::TradeoffPoint;
use crate::eval::{Record, Summary};
use crate::model::BlockDropFlops;
use crate::profile::ProfileReport;
use crate::tui::event::Action;
use crate::tui::worker::{Request, Update};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Blocks,
    Policies,
    Clusters,
    Tradeoff,
    EasyHard,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Overview,
        Tab::Blocks,
        Tab::Policies,
        Tab::Clusters,
        Tab::Tradeoff,
        Tab::EasyHard,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Blocks => "Blocks",
            Tab::Policies => "Policies",
            Tab::Clusters => "Clusters",
            Tab::Tradeoff => "Trade-off",
            Tab::EasyHard => "Easy/Hard",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

/// Column the Blocks view sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSort {
    Index,
    KeepRate,
    Flops,
    Time,
}

/// Order of the Policies view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOrder {
    Blocks,
    Class,
}

/// What is known about the model and data being explored.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub config: String,
    pub model_path: String,
    pub data_path: String,
    pub device: String,
    pub untrained: bool,
    pub flops: BlockDropFlops,
    pub class_names: Vec<String>,
}

/// Everything derived from one evaluation's records.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub threshold: f32,
    pub records: Vec<Record>,
    pub summary: Summary,
    pub keep_rates: Vec<f64>,
    pub classes: Vec<ClassRow>,
    pub clusters: Vec<Cluster>,
    /// Record positions, easiest first.
    pub easy_to_hard: Vec<usize>,
}

impl Analysis {
    pub fn new(threshold: f32, records: Vec<Record>) -> Self {
        let k = analysis::default_k(&records);
        Self {
            threshold,
            summary: Summary::of(&records),
            keep_rates: analysis::keep_rates(&records),
            classes: analysis::per_class(&records),
            clusters: analysis::cluster_policies(&records, k),
            easy_to_hard: analysis::easy_to_hard(&records),
            records,
        }
    }
}

pub struct App {
    pub tab: Tab,
    pub info: ModelInfo,
    pub dataset: Arc<Dataset>,
    pub analysis: Option<Analysis>,
    /// The first evaluation (threshold 0.5): the model's own point and accuracy.
    pub baseline: Option<Summary>,
    pub tradeoff: Option<Vec<TradeoffPoint>>,
    pub profile: Option<ProfileReport>,
    /// The task in progress and how far it is.
    pub busy: Option<(&'static str, usize, usize)>,
    pub selected: usize,
    pub cluster_member: usize,
    pub block_sort: BlockSort,
    pub policy_order: PolicyOrder,
    pub threshold: f32,
    /// Class-name filter of the Policies view, and whether it is being typed.
    pub filter: String,
    pub typing_filter: bool,
    pub show_help: bool,
    pub message: Option<String>,
    pub quit: bool,
    pub export_dir: PathBuf,
}

impl App {
    pub fn new(info: ModelInfo, dataset: Arc<Dataset>, export_dir: PathBuf) -> Self {
        Self {
            tab: Tab::Overview,
            info,
            dataset,
            analysis: None,
            baseline: None,
            tradeoff: None,
            profile: None,
            busy: Some(("evaluating", 0, 1)),
            selected: 0,
            cluster_member: 0,
            block_sort: BlockSort::Index,
            policy_order: PolicyOrder::Blocks,
            threshold: crate::model::DEFAULT_THRESHOLD,
            filter: String::new(),
            typing_filter: false,
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
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<usize> = (0..a.records.len())
            .filter(|&i| {
                filter.is_empty()
                    || crate::report::grids::class_name(&self.info.class_names, a.records[i].label)
                        .to_lowercase()
                        .contains(&filter)
            })
            .collect();
        match self.policy_order {
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
        match self.block_sort {
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

    /// How many rows the current view selects among.
    fn row_count(&self) -> usize {
        match self.tab {
            Tab::Blocks => self.block_rows().len(),
            Tab::Policies => self.policy_rows().len(),
            Tab::Clusters => self.analysis.as_ref().map_or(0, |a| a.clusters.len()),
            Tab::EasyHard => self
                .analysis
                .as_ref()
                .map_or(0, |a| a.records.len().min(20)),
            Tab::Overview | Tab::Tradeoff => 0,
        }
    }

    fn switch(&mut self, tab: Tab) -> Option<Request> {
        self.tab = tab;
        self.selected = 0;
        self.cluster_member = 0;
        // The trade-off is computed the first time its tab is opened.
        (tab == Tab::Tradeoff && self.tradeoff.is_none() && self.busy.is_none()).then(|| {
            self.busy = Some(("trade-off sweep", 0, 1));
            Request::Tradeoff
        })
    }

    /// Applies a user action; returns work for the worker, if any.
    pub fn apply(&mut self, action: Action) -> Option<Request> {
        self.message = None;
        let rows = self.row_count();
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
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(rows.saturating_sub(1)),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::PageDown => self.selected = (self.selected + 10).min(rows.saturating_sub(1)),
            Action::Left | Action::Right if self.tab == Tab::Tradeoff => {
                let step = if action == Action::Right { 0.05 } else { -0.05 };
                self.threshold = ((self.threshold + step) * 100.0).round().clamp(5.0, 95.0) / 100.0;
                if self.busy.is_none() {
                    self.busy = Some(("evaluating", 0, 1));
                    return Some(Request::Evaluate {
                        threshold: self.threshold,
                    });
                }
                self.message = Some("busy: try again when the current task ends".into());
            }
            Action::Left => self.cluster_member = self.cluster_member.saturating_sub(1),
            Action::Right => self.cluster_member += 1,
            Action::Sort => match self.tab {
                Tab::Blocks => {
                    self.block_sort = match self.block_sort {
                        BlockSort::Index => BlockSort::KeepRate,
                        BlockSort::KeepRate => BlockSort::Flops,
                        BlockSort::Flops => BlockSort::Time,
                        BlockSort::Time => BlockSort::Index,
                    }
                }
                Tab::Policies => {
                    self.policy_order = match self.policy_order {
                        PolicyOrder::Blocks => PolicyOrder::Class,
                        PolicyOrder::Class => PolicyOrder::Blocks,
                    };
                    self.selected = 0;
                }
                _ => {}
            },
            Action::Filter => {
                if self.tab == Tab::Policies {
                    self.typing_filter = true;
                    self.filter.clear();
                }
            }
            Action::Type(c) => {
                self.filter.push(c);
                self.selected = 0;
            }
            Action::Backspace => {
                self.filter.pop();
            }
            Action::EndTyping => self.typing_filter = false,
            Action::Profile | Action::Export if self.busy.is_some() => {
                self.message = Some("busy: try again when the current task ends".into());
            }
            Action::Profile => {
                self.busy = Some(("profiling", 0, 1));
                return Some(Request::Profile);
            }
            Action::Export => {
                self.busy = Some(("export", 0, 1));
                return Some(Request::Export(self.export_dir.clone()));
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
                self.busy = None;
            }
            Update::Tradeoff(points) => {
                self.tradeoff = Some(points);
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
