//! Executors: ways to run the base network under per-image keep decisions.
//!
//! - [`skip`]: one policy for the whole input; dropped blocks are never computed.
//! - [`grouped`]: a batch with per-image policies, split into groups sharing a policy, each
//!   group run by `skip`.
//! - [`masked`]: every block computed for the whole batch and blended by the keep bits, as the
//!   reference trains (autograd-friendly, saves no time).

pub mod grouped;
pub mod masked;
pub mod skip;

pub use grouped::forward_grouped;
pub use masked::forward_masked;
pub use skip::forward_skip;
