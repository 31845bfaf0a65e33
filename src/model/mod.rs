//! The networks: flat ResNets, the policy network, the pair, and their FLOPs.

pub mod blockdrop;
pub mod flops;
pub mod fused;
pub mod norm;
pub mod policy;
pub mod resnet;

pub use blockdrop::{BlockDrop, DEFAULT_THRESHOLD};
pub use flops::{BlockDropFlops, NetworkFlops};
pub use policy::PolicyNet;
pub use resnet::FlatResNet;
