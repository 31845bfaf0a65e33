//! The policy network ("agent"): a small flat ResNet without `fc`, then `logit` (one
//! keep-probability per base block, through a sigmoid) and `vnet` (a value head that exists
//! in the reference's weights but takes no part in its loss).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::config::Config;
use crate::model::fused::InputPrep;
use crate::model::resnet::FlatResNet;

#[derive(Debug, Clone)]
pub struct PolicyNet {
    pub features: FlatResNet,
    pub logit: Linear,
    pub vnet: Linear,
    /// The input is average-pooled by this factor first (2 for the ImageNet policy).
    pub input_pool: usize,
    /// Zeros added before and after each side first, `(height, width)`
    /// ([`Config::policy_input_side`]).
    pub input_pad: ((usize, usize), (usize, usize)),
}

impl PolicyNet {
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        let features = FlatResNet::new(&config.policy, vb.pp("features"))?;
        let dim = config.policy.feature_dim();
        Ok(Self {
            features,
            logit: candle_nn::linear(dim, config.num_blocks(), vb.pp("logit"))?,
            vnet: candle_nn::linear(dim, 1, vb.pp("vnet"))?,
            input_pool: config.policy_input_pool,
            input_pad: {
                let (_, h, w) = config.input;
                let (top, bottom, _) = config.policy_input_side(h);
                let (left, right, _) = config.policy_input_side(w);
                ((top, bottom), (left, right))
            },
        })
    }

    /// The trunk's pooled features, `[N, feature_dim]`. A folded trunk runs as one fused pass
    /// in eval mode ([`crate::model::fused`]).
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train && self.features.fusable() {
            let prep = InputPrep {
                pad: self.input_pad,
                pool: self.input_pool,
            };
            return self.features.fused_forward(x, None, prep);
        }
        let ((top, bottom), (left, right)) = self.input_pad;
        let mut x = x.clone();
        if top + bottom > 0 {
            x = x.pad_with_zeros(2, top, bottom)?;
        }
        if left + right > 0 {
            x = x.pad_with_zeros(3, left, right)?;
        }
        if self.input_pool > 1 {
            x = x.avg_pool2d(self.input_pool)?;
        }
        self.features.forward_full(&x, train)
    }

    /// Keep probabilities `[N, K]` = sigmoid(logit(features)).
    pub fn keep_probs(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.probs_from_features(&self.features(x, train)?)
    }

    pub fn probs_from_features(&self, features: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(&self.logit.forward(features)?)
    }
}
