//! Writes `assets/default.safetensors`: an R32_FMNIST BlockDrop model with freshly
//! initialised weights (candle's Kaiming-normal convolutions, PyTorch-style linear layers,
//! BatchNorm at identity), marked `stage = untrained`. It is the bundled default until a
//! trained one replaces it; `blockdrop` says so when it runs it.
//!
//! Run: `cargo run --release --example make_untrained_default [OUT [CONFIG]]`: CONFIG (default
//! R32_FMNIST) writes an untrained model of another configuration, e.g. an R101_ImgNet to
//! measure evaluation speed and memory on an image folder (docs/scale-out.md, "Sharded evaluation").

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use blockdrop::checkpoint::ModelStage;
use blockdrop::config::Config;
use blockdrop::model::BlockDrop;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map_or_else(
        || PathBuf::from("assets/default.safetensors"),
        PathBuf::from,
    );
    let device = Device::Cpu;
    let config = Config::by_name(&std::env::args().nth(2).unwrap_or("R32_FMNIST".into()))?;
    let varmap = VarMap::new();
    BlockDrop::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    let tensors: BTreeMap<String, candle_core::Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    let metadata = BTreeMap::from([
        ("config".to_string(), config.name.clone()),
        (
            ModelStage::KEY.to_string(),
            ModelStage::Untrained.name().to_string(),
        ),
        ("epoch".to_string(), "0".to_string()),
    ]);
    blockdrop::checkpoint::native::write(&out, &tensors, &metadata)?;
    println!("wrote {} ({} tensors)", out.display(), tensors.len());
    Ok(())
}
