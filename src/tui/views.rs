//! What each view remembers (cursor, sort, filter, page) and what the app holds for it: the
//! analysed evaluation, the loaded models' facts, the watched run folders.

use std::path::PathBuf;

use crate::analysis::{self, ClassRow, Cluster};
use crate::model::BlockDropFlops;
use crate::records::{Record, Summary};
use crate::runs::RunFolder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Blocks,
    Policies,
    Clusters,
    Tradeoff,
    EasyHard,
    Models,
    Runs,
}

impl Tab {
    pub const ALL: [Tab; 8] = [
        Tab::Overview,
        Tab::Blocks,
        Tab::Policies,
        Tab::Clusters,
        Tab::Tradeoff,
        Tab::EasyHard,
        Tab::Models,
        Tab::Runs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Blocks => "Blocks",
            Tab::Policies => "Policies",
            Tab::Clusters => "Clusters",
            Tab::Tradeoff => "Trade-off",
            Tab::EasyHard => "Easy/Hard",
            Tab::Models => "Models",
            Tab::Runs => "Runs",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

/// Column the Blocks view sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BlockSort {
    #[default]
    Index,
    KeepRate,
    Flops,
    Time,
}

/// Order of the Policies view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyOrder {
    #[default]
    Blocks,
    Class,
}

/// The Blocks view's state: the selected row and the sort column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlocksView {
    pub selected: usize,
    pub sort: BlockSort,
}

/// The Policies view's state: the selected row, the order, and the class-name filter (and
/// whether it is being typed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoliciesView {
    pub selected: usize,
    pub order: PolicyOrder,
    pub filter: String,
    pub typing_filter: bool,
}

/// The Clusters view's state: the selected cluster and which of its members is shown,
/// always below the selected cluster's member count (0 when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClustersView {
    pub selected: usize,
    pub member: usize,
}

/// The Easy/Hard view's state: the selected rank, in both lists at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EasyHardView {
    pub selected: usize,
}

/// The Models view's highlighted row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelsView {
    pub selected: usize,
}

/// The Runs view's highlighted run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunsView {
    pub selected: usize,
}

/// Training run folders the Runs view watches: as last read, and when.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub dirs: Vec<PathBuf>,
    /// One entry per folder: the run as last read, or why it could not be.
    pub read: Vec<std::result::Result<RunFolder, String>>,
    pub read_at: Option<std::time::Instant>,
}

impl Runs {
    /// How often the folders are read again (a run still training appends an epoch).
    pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

    /// Reads every folder again when [`Runs::REFRESH`] has passed; returns whether it did.
    pub fn refresh(&mut self) -> bool {
        if self.read_at.is_some_and(|t| t.elapsed() < Self::REFRESH) {
            return false;
        }
        self.read = self
            .dirs
            .iter()
            .map(|d| RunFolder::read(d).map_err(|e| e.to_string()))
            .collect();
        self.read_at = Some(std::time::Instant::now());
        true
    }
}

/// What is known about the model and data being explored.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub config: String,
    pub model_path: String,
    pub data_path: String,
    pub device: String,
    pub untrained: bool,
    /// False for a base network alone (no policy network: every block runs).
    pub has_policy: bool,
    pub flops: BlockDropFlops,
    pub classes: crate::config::ClassSet,
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
    pub fn new(threshold: f32, records: Vec<Record>) -> crate::error::Result<Self> {
        let figures = analysis::Analysis::of(&records, None)?;
        Ok(Self {
            threshold,
            summary: Summary::of(&records),
            keep_rates: figures.keep_rates,
            classes: figures.classes,
            clusters: figures.clusters,
            easy_to_hard: figures.easy_to_hard,
            records,
        })
    }
}
