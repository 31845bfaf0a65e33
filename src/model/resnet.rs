//! The flat ResNets of the reference: blocks indexed segment by segment, each one addressable
//! on its own so executors can run, skip or time it. Parameter names follow the reference's
//! state dicts exactly (`conv1`, `bn1`, `blocks.{segment}.{block}.*`, `ds.{segment}.{0,1}.*`,
//! `fc`), so the struct tree is the checkpoint's name tree.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::config::{BlockKind, Family, ResNetSpec};
use crate::kernels::{ops, pool, ConvGeom, Kernels};
use crate::model::norm::{add_relu, batch_norm_nhwc};

/// PyTorch's BatchNorm2d defaults, which the reference never changes.
fn bn_config() -> BatchNormConfig {
    BatchNormConfig {
        eps: 1e-5,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    }
}

/// A bias-free convolution followed by BatchNorm, as every conv in these networks is.
#[derive(Debug, Clone)]
pub struct ConvBn {
    /// The convolution and BatchNorm as trained; `None` once released after a fold for
    /// inference only ([`ConvBn::release_unfolded`]).
    unfolded: Option<(Conv2d, BatchNorm)>,
    pub geom: ConvGeom,
    /// The pair as one biased convolution for inference, in the form the kernels in use take
    /// (see [`ConvBn::fold`]).
    folded: Option<Folded>,
}

/// A folded convolution: one form only, since a second copy of ResNet-101's weights is
/// 178 MB.
#[derive(Debug, Clone)]
enum Folded {
    /// For candle's operators.
    Stock(Conv2d),
    /// Weights and bias packed for the fast kernels (`[kh·kw·cin + 1, cout]`).
    Fast(Tensor),
}

impl ConvBn {
    /// `conv_vb` and `bn_vb` are the two modules' own prefixes (siblings in the reference).
    #[allow(clippy::too_many_arguments)]
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        conv_vb: VarBuilder,
        bn_vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding,
            stride,
            ..Default::default()
        };
        let conv = candle_nn::conv2d_no_bias(cin, cout, kernel, cfg, conv_vb)?;
        let bn = candle_nn::batch_norm(cout, bn_config(), bn_vb)?;
        Ok(Self {
            unfolded: Some((conv, bn)),
            geom: ConvGeom {
                kernel,
                stride,
                pad: padding,
                cin,
                cout,
            },
            folded: None,
        })
    }

    /// Folds eval-mode BatchNorm into the convolution: with s = γ / √(var + ε), the weights
    /// become w·s (per output channel) and the bias β − mean·s. Eval-mode forwards then cost
    /// one convolution and a bias add instead of a convolution and four elementwise passes.
    /// Train-mode forwards keep using the unfolded pair (and would make a fold stale). The
    /// fold takes the form `kernels` use; the other kernels run the unfolded pair.
    pub fn fold(&mut self, kernels: Kernels) -> Result<()> {
        let (conv, bn) = self.unfolded()?;
        let (gamma, beta) = bn.weight_and_bias().ok_or_else(|| {
            candle_core::Error::Msg("BatchNorm without affine parameters cannot be folded".into())
        })?;
        let scale = (gamma / (bn.running_var() + bn.eps())?.sqrt()?)?;
        let weight = conv
            .weight()
            .broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
        let bias = (beta - (bn.running_mean() * &scale)?)?;
        // Detached: a fold of trainable weights would otherwise keep the whole computation
        // (the scaled, transposed and concatenated copies) alive for autograd.
        let (weight, bias) = (weight.detach(), bias.detach());
        self.folded = Some(match kernels {
            Kernels::Fast => Folded::Fast(ops::pack_with_bias(&weight, &bias, self.geom)?.detach()),
            Kernels::Stock => Folded::Stock(Conv2d::new(weight, Some(bias), *conv.config())),
        });
        Ok(())
    }

    /// The BatchNorm as trained (its running statistics move in train-mode forwards); `None`
    /// once released.
    pub fn batch_norm(&self) -> Option<&BatchNorm> {
        self.unfolded.as_ref().map(|(_, bn)| bn)
    }

    /// The convolution and BatchNorm as trained, or an error once released.
    fn unfolded(&self) -> Result<&(Conv2d, BatchNorm)> {
        self.unfolded.as_ref().ok_or_else(|| {
            candle_core::Error::Msg(
                "this network was folded for inference only: its unfolded convolutions and \
                 BatchNorms were released (training, train-mode forwards and changing the \
                 kernels need them)"
                    .into(),
            )
        })
    }

    /// Frees the unfolded convolution and BatchNorm of a folded pair: eval-mode forwards on
    /// the kernels it was folded for need only the fold. Halves a folded network's weight
    /// memory (ResNet-101: 198 MB). Does nothing to a pair not folded.
    pub fn release_unfolded(&mut self) {
        if self.folded.is_some() {
            self.unfolded = None;
        }
    }

    pub fn is_folded(&self) -> bool {
        self.folded.is_some()
    }

    /// The packed weights of a pair folded for the fast kernels ([`ops::pack_with_bias`]).
    pub(crate) fn packed(&self) -> Option<&Tensor> {
        match &self.folded {
            Some(Folded::Fast(packed)) => Some(packed),
            _ => None,
        }
    }

    /// conv → BN on NCHW input with candle's ops.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.folded {
            Some(Folded::Stock(folded)) if !train => folded.forward(x),
            _ => {
                let (conv, bn) = self.unfolded()?;
                bn.forward_t(&conv.forward(x)?, train)
            }
        }
    }

    /// `act(bn(conv(x)) [+ residual])`, on the layout `kernels` keeps (NHWC for the fast
    /// kernels, where a folded eval-mode pair is one fused kernel call).
    pub fn forward_act(
        &self,
        x: &Tensor,
        train: bool,
        kernels: Kernels,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        match (kernels, &self.folded) {
            (Kernels::Fast, Some(Folded::Fast(packed))) if !train => {
                ops::fused_conv2d(x, packed, residual, self.geom, relu)
            }
            (Kernels::Fast, _) => {
                let (conv, bn) = self.unfolded()?;
                let y = ops::conv2d(x, &ops::hwio(conv.weight())?, self.geom)?;
                batch_norm_nhwc(bn, &y, train, residual, relu)
            }
            (Kernels::Stock, _) => add_relu(self.forward_t(x, train)?, residual, relu),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BasicBlock {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
}

#[derive(Debug, Clone)]
pub struct Bottleneck {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
    pub conv3: ConvBn,
}

/// One residual block's branch `f(x)`; the block's output is `relu(residual + f(x))`.
#[derive(Debug, Clone)]
// Blocks are built once and live in one Vec per network: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Block {
    fn new(
        kind: BlockKind,
        cin: usize,
        planes: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv_bn = |i: usize, cin, cout, k, s, p| {
            ConvBn::new(
                cin,
                cout,
                k,
                s,
                p,
                vb.pp(format!("conv{i}")),
                vb.pp(format!("bn{i}")),
            )
        };
        Ok(match kind {
            BlockKind::Basic => Block::Basic(BasicBlock {
                conv1: conv_bn(1, cin, planes, 3, stride, 1)?,
                conv2: conv_bn(2, planes, planes, 3, 1, 1)?,
            }),
            BlockKind::Bottleneck => Block::Bottleneck(Bottleneck {
                conv1: conv_bn(1, cin, planes, 1, 1, 0)?,
                conv2: conv_bn(2, planes, planes, 3, stride, 1)?,
                conv3: conv_bn(3, planes, planes * 4, 1, 1, 0)?,
            }),
        })
    }

    /// The block's output `relu(residual + f(x))`; the last convolution's epilogue does the
    /// addition and the ReLU.
    pub fn forward(
        &self,
        x: &Tensor,
        residual: &Tensor,
        train: bool,
        kernels: Kernels,
    ) -> Result<Tensor> {
        match self {
            Block::Basic(b) => {
                let h = b.conv1.forward_act(x, train, kernels, None, true)?;
                b.conv2
                    .forward_act(&h, train, kernels, Some(residual), true)
            }
            Block::Bottleneck(b) => {
                // The first activation is freed before the last convolution allocates its
                // output (at ResNet-101's batch 64, 51 MB less at the peak).
                let h = {
                    let h = b.conv1.forward_act(x, train, kernels, None, true)?;
                    b.conv2.forward_act(&h, train, kernels, None, true)?
                };
                b.conv3
                    .forward_act(&h, train, kernels, Some(residual), true)
            }
        }
    }
}

impl Block {
    fn conv_bns(&mut self) -> Vec<&mut ConvBn> {
        match self {
            Block::Basic(b) => vec![&mut b.conv1, &mut b.conv2],
            Block::Bottleneck(b) => vec![&mut b.conv1, &mut b.conv2, &mut b.conv3],
        }
    }
}

/// The shortcut of a segment's first block (`ds.{segment}` in the reference).
#[derive(Debug, Clone)]
pub enum Shortcut {
    Identity,
    /// "Option A" (`DownsampleB`): average-pool by the stride, then append zero channels.
    ZeroPad {
        stride: usize,
        extra_channels: usize,
    },
    /// "Option B": conv1x1 with stride, then BatchNorm.
    Projection(ConvBn),
}

impl Shortcut {
    pub fn forward_t(&self, x: &Tensor, train: bool, kernels: Kernels) -> Result<Tensor> {
        match self {
            Shortcut::Identity => Ok(x.clone()),
            Shortcut::ZeroPad {
                stride,
                extra_channels,
            } => match kernels {
                Kernels::Stock => {
                    let pooled = if *stride > 1 {
                        x.avg_pool2d(*stride)?
                    } else {
                        x.clone()
                    };
                    pooled.pad_with_zeros(1, 0, *extra_channels)
                }
                Kernels::Fast => pool::shortcut_a(x, *stride, *extra_channels),
            },
            Shortcut::Projection(conv_bn) => conv_bn.forward_act(x, train, kernels, None, false),
        }
    }
}

/// A flat ResNet: stem, blocks in one flat list, one shortcut per segment, optional `fc`.
#[derive(Debug, Clone)]
pub struct FlatResNet {
    pub spec: ResNetSpec,
    pub stem: ConvBn,
    pub blocks: Vec<Block>,
    /// Indexed by segment; applied to the input of the segment's first block.
    pub shortcuts: Vec<Shortcut>,
    pub fc: Option<Linear>,
    /// Flat index of each segment's first block.
    segment_starts: Vec<usize>,
    /// Which operators run; with [`Kernels::Fast`] activations between [`FlatResNet::stem`]
    /// and [`FlatResNet::head`] are NHWC, otherwise NCHW.
    kernels: Kernels,
}

impl FlatResNet {
    pub fn new(spec: &ResNetSpec, vb: VarBuilder) -> Result<Self> {
        let stem = match spec.family {
            Family::Cifar => ConvBn::new(
                spec.in_channels,
                spec.stem_width(),
                3,
                1,
                1,
                vb.pp("conv1"),
                vb.pp("bn1"),
            )?,
            Family::ImageNet => ConvBn::new(
                spec.in_channels,
                spec.stem_width(),
                7,
                2,
                3,
                vb.pp("conv1"),
                vb.pp("bn1"),
            )?,
        };
        let mut inplanes = spec.stem_width();
        let mut blocks = Vec::with_capacity(spec.num_blocks());
        let mut shortcuts = Vec::with_capacity(spec.layers.len());
        let mut segment_starts = Vec::with_capacity(spec.layers.len());
        for (segment, (&n, &planes)) in spec.layers.iter().zip(&spec.widths).enumerate() {
            let stride = spec.stride(segment);
            let out = planes * spec.block.expansion();
            let needs_shortcut = stride != 1 || inplanes != out;
            shortcuts.push(match (needs_shortcut, spec.family) {
                (false, _) => Shortcut::Identity,
                (true, Family::Cifar) => Shortcut::ZeroPad {
                    stride,
                    extra_channels: out.checked_sub(inplanes).ok_or_else(|| {
                        candle_core::Error::Msg(format!(
                            "option-A shortcut cannot shrink {inplanes} to {out} channels"
                        ))
                    })?,
                },
                (true, Family::ImageNet) => {
                    let ds = vb.pp("ds").pp(segment);
                    Shortcut::Projection(ConvBn::new(
                        inplanes,
                        out,
                        1,
                        stride,
                        0,
                        ds.pp(0),
                        ds.pp(1),
                    )?)
                }
            });
            segment_starts.push(blocks.len());
            let seg_vb = vb.pp("blocks").pp(segment);
            for b in 0..n {
                let (cin, s) = if b == 0 { (inplanes, stride) } else { (out, 1) };
                blocks.push(Block::new(spec.block, cin, planes, s, seg_vb.pp(b))?);
            }
            inplanes = out;
        }
        let fc = match spec.classes {
            Some(classes) => Some(candle_nn::linear(inplanes, classes, vb.pp("fc"))?),
            None => None,
        };
        Ok(Self {
            spec: spec.clone(),
            stem,
            blocks,
            shortcuts,
            fc,
            segment_starts,
            kernels: Kernels::default_for(vb.device()),
        })
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Chooses the operators ([`Kernels::Fast`] needs f32 on the CPU); a folded network is
    /// folded again for them.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        if kernels == self.kernels {
            return Ok(());
        }
        // Refused before anything changes, so the network stays usable as it was.
        if self.stem.is_folded() {
            self.stem.unfolded()?;
        }
        self.kernels = kernels;
        if self.stem.is_folded() {
            self.fold_batchnorm()?;
        }
        Ok(())
    }

    /// Whether [`FlatResNet::set_kernels`] can switch to `kernels` (it cannot once the
    /// unfolded weights were freed).
    pub fn can_set_kernels(&self, kernels: Kernels) -> Result<()> {
        if kernels != self.kernels && self.stem.is_folded() {
            self.stem.unfolded()?;
        }
        Ok(())
    }

    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Every convolution–BatchNorm pair: the stem, the blocks', the projection shortcuts'.
    fn conv_bns(&mut self) -> Vec<&mut ConvBn> {
        let mut all = vec![&mut self.stem];
        for block in &mut self.blocks {
            all.extend(block.conv_bns());
        }
        for shortcut in &mut self.shortcuts {
            if let Shortcut::Projection(conv_bn) = shortcut {
                all.push(conv_bn);
            }
        }
        all
    }

    /// Folds every BatchNorm into its convolution for inference ([`ConvBn::fold`]).
    pub fn fold_batchnorm(&mut self) -> Result<()> {
        let kernels = self.kernels;
        self.conv_bns()
            .into_iter()
            .try_for_each(|conv_bn| conv_bn.fold(kernels))
    }

    /// Folds for inference only: [`FlatResNet::fold_batchnorm`], then the unfolded weights are
    /// freed ([`ConvBn::release_unfolded`]). Training and changing the kernels are refused
    /// afterwards.
    pub fn fold_for_inference(&mut self) -> Result<()> {
        self.fold_batchnorm()?;
        self.conv_bns()
            .into_iter()
            .for_each(ConvBn::release_unfolded);
        Ok(())
    }

    /// `conv1 → bn1 → relu` (+ max-pool 3x3/2 on the ImageNet family). Takes NCHW images;
    /// returns the layout the kernels keep.
    pub fn stem(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = match self.kernels {
            Kernels::Stock => x.clone(),
            Kernels::Fast => x.permute((0, 2, 3, 1))?.contiguous()?,
        };
        let x = self.stem.forward_act(&x, train, self.kernels, None, true)?;
        match (self.spec.family, self.kernels) {
            (Family::Cifar, _) => Ok(x),
            (Family::ImageNet, Kernels::Stock) => max_pool_3x3_s2(&x),
            (Family::ImageNet, Kernels::Fast) if !train => pool::max_pool_3x3_s2(&x),
            (Family::ImageNet, Kernels::Fast) => max_pool_3x3_s2(&x.permute((0, 3, 1, 2))?)?
                .permute((0, 2, 3, 1))?
                .contiguous(),
        }
    }

    /// The segment whose first block is block `k`, if it is one.
    pub(crate) fn segment_starting_at(&self, k: usize) -> Option<usize> {
        self.segment_starts.iter().position(|&start| start == k)
    }

    /// What block `k` adds its branch to, and what it outputs when dropped: the segment's
    /// shortcut for a segment's first block (which therefore runs even when the block is
    /// dropped), the input itself otherwise.
    pub fn residual(&self, k: usize, x: &Tensor, train: bool) -> Result<Tensor> {
        match self.segment_starting_at(k) {
            Some(segment) => self.shortcuts[segment].forward_t(x, train, self.kernels),
            None => Ok(x.clone()),
        }
    }

    /// Block `k` kept, given its residual ([`FlatResNet::residual`]): `relu(residual + f(x))`.
    pub fn block_output(
        &self,
        k: usize,
        x: &Tensor,
        residual: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        self.blocks[k].forward(x, residual, train, self.kernels)
    }

    /// Block `k` kept: `relu(residual + f(x))`.
    pub fn run_block(&self, k: usize, x: &Tensor, train: bool) -> Result<Tensor> {
        let residual = self.residual(k, x, train)?;
        self.block_output(k, x, &residual, train)
    }

    /// Global average pool to `[N, C]`: the reference's `AvgPool2d(8)` on 32x32 CIFAR input,
    /// `AvgPool2d(7)` on 224x224 ImageNet input and `AvgPool2d(4)` in the ImageNet policy all
    /// cover the whole final map; the global pool also serves Fashion-MNIST's 7x7 map.
    pub fn pool(&self, x: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Stock => x.mean((2, 3)),
            Kernels::Fast => pool::global_avg_pool(x),
        }
    }

    /// Pooled features → `fc` logits. A policy trunk (no `fc`) returns the features.
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        let features = self.pool(x)?;
        match &self.fc {
            Some(fc) => fc.forward(&features),
            None => Ok(features),
        }
    }

    /// Every block kept (the reference's `forward_full`); a folded network in eval mode runs
    /// as one fused pass ([`crate::model::fused`]).
    pub fn forward_full(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train && self.fusable() {
            return self.fused_forward(x, None, crate::model::fused::InputPrep::NONE);
        }
        let mut x = self.stem(x, train)?;
        for k in 0..self.num_blocks() {
            x = self.run_block(k, &x, train)?;
        }
        self.head(&x)
    }
}

/// The ImageNet stem's max-pool 3x3 stride 2 padding 1, NCHW. Zero padding equals PyTorch's
/// -inf padding here: the input is post-ReLU (≥ 0) and every window holds a real element.
fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 2)
}
