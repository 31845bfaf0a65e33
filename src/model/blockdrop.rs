//! The pair the method is about: a policy network deciding, per image, which blocks of the
//! base ResNet run. A base network on its own (a pretrained ResNet before any policy is
//! trained) is a model too: it has no policy network and keeps every block.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::Config;
use crate::kernels::Kernels;
use crate::model::policy::PolicyNet;
use crate::model::resnet::FlatResNet;

/// Policy = keep-probability ≥ this (the reference implementation's `test.py`).
pub const DEFAULT_THRESHOLD: f32 = 0.5;

#[derive(Debug, Clone)]
pub struct BlockDrop {
    pub config: Config,
    /// The policy network; `None` for a base network alone, which keeps every block.
    pub agent: Option<PolicyNet>,
    pub resnet: FlatResNet,
}

impl BlockDrop {
    /// Builds both networks from `vb`, whose tensors sit under `agent.` and `resnet.`.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            agent: Some(PolicyNet::new(config, vb.pp("agent"))?),
            resnet: FlatResNet::new(&config.base, vb.pp("resnet"))?,
        })
    }

    /// Builds a base network alone from `vb`'s `resnet.` tensors: no policy, every block kept.
    pub fn base_only(config: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            agent: None,
            resnet: FlatResNet::new(&config.base, vb.pp("resnet"))?,
        })
    }

    pub fn num_blocks(&self) -> usize {
        self.resnet.num_blocks()
    }

    /// False for a base network alone.
    pub fn has_policy(&self) -> bool {
        self.agent.is_some()
    }

    /// The policy network, or an error saying this model has none (training a policy needs
    /// one).
    pub fn policy(&self) -> Result<&PolicyNet> {
        self.agent.as_ref().ok_or_else(|| {
            candle_core::Error::Msg("this model is a base network alone: it has no policy".into())
        })
    }

    /// Keep probabilities `[N, K]`: the policy's, or all ones for a base network alone.
    pub fn keep_probs(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.agent {
            Some(agent) => agent.keep_probs(x, train),
            None => Tensor::ones(
                (x.dim(0)?, self.num_blocks()),
                candle_core::DType::F32,
                x.device(),
            ),
        }
    }

    /// Chooses the operators of both networks ([`Kernels::Fast`] needs f32 on the CPU).
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        if let Some(agent) = &self.agent {
            agent.features.can_set_kernels(kernels)?;
        }
        self.resnet.can_set_kernels(kernels)?;
        if let Some(agent) = &mut self.agent {
            agent.features.set_kernels(kernels)?;
        }
        self.resnet.set_kernels(kernels)
    }

    /// Folds both networks for inference only and frees their unfolded weights
    /// ([`crate::model::resnet::FlatResNet::fold_for_inference`]).
    pub fn fold_for_inference(&mut self) -> Result<()> {
        if let Some(agent) = &mut self.agent {
            agent.features.fold_for_inference()?;
        }
        self.resnet.fold_for_inference()
    }

    /// Folds BatchNorm into the convolutions of both networks, for inference only.
    pub fn fold_batchnorm(&mut self) -> Result<()> {
        if let Some(agent) = &mut self.agent {
            agent.features.fold_batchnorm()?;
        }
        self.resnet.fold_batchnorm()
    }
}

/// Turns keep probabilities `[N, K]` into keep bits per image.
pub fn policy_bits(probs: &[Vec<f32>], threshold: f32) -> Vec<Vec<bool>> {
    probs
        .iter()
        .map(|row| row.iter().map(|&p| p >= threshold).collect())
        .collect()
}

/// How many blocks a policy keeps.
pub fn kept_blocks(keep: &[bool]) -> usize {
    keep.iter().filter(|&&k| k).count()
}

/// Keep bits as the reference prints them: one '0'/'1' per block.
pub fn policy_string(keep: &[bool]) -> String {
    keep.iter().map(|&k| if k { '1' } else { '0' }).collect()
}

/// Keep bits as a `[N, K]` f32 tensor of 0/1 (for the masked executor).
pub fn policy_tensor(keep: &[Vec<bool>], device: &candle_core::Device) -> Result<Tensor> {
    let k = keep.first().map_or(0, Vec::len);
    let flat: Vec<f32> = keep
        .iter()
        .flatten()
        .map(|&b| if b { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_vec(flat, (keep.len(), k), device)
}
