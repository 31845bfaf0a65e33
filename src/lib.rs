//! blockdrop: BlockDrop (Wu et al., CVPR 2018) in Rust. A policy network looks at an image
//! once and decides which residual blocks of a ResNet to run; this crate loads, runs and
//! evaluates such models with blocks truly skipped. The map of the modules and
//! their data flow is docs/architecture.md; the method as implemented, docs/method.md; every
//! file read or written, docs/formats.md.

pub mod analysis;
pub mod atomic;
pub mod bundled;
pub mod cancel;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod exec;
pub mod fingerprint;
pub mod foreign_panic;
pub mod input;
pub mod kernels;
pub mod lock;
pub mod model;
pub mod output;
pub mod pickle;
pub mod process;
pub mod profile;
pub mod records;
pub mod report;
pub mod rng;
pub mod runs;
pub mod stats;
pub mod study;
pub mod train;
pub mod tui;

pub use error::{Error, Result};
