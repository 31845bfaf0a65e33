//! One eval-mode pass of a folded flat ResNet on the fast kernels, over plain buffers that
//! each thread keeps from call to call: no tensor, no allocation and no candle operator
//! between the input and the pooled features. At batch 1 the small networks' operators cost
//! as much as their arithmetic (the policy network is 18 MFLOPs: a tensor, a relayout or a
//! pass of the thread pool per layer is a sizeable share of it; docs/performance.md).
//!
//! It runs what [`FlatResNet::forward_full`] and [`crate::exec::forward_skip`] run in eval
//! mode, dropped blocks truly skipped, for the networks it can: the fast kernels, every
//! convolution folded for them, the CIFAR family's stem, basic blocks and option-A or
//! identity shortcuts (every policy network, and every CIFAR and Fashion-MNIST base).

use std::cell::RefCell;

use candle_core::{bail, Module, Result, Storage, Tensor};

use crate::config::Family;
use crate::kernels::conv::Nhw;
use crate::kernels::pool::{self, ShortcutA};
use crate::kernels::{cpu_f32, ops, Kernels};
use crate::model::resnet::{Block, ConvBn, FlatResNet, Shortcut};

/// Zeros added to the input's sides, `((top, bottom), (left, right))`, then the average pool
/// by `pool`: how the policy network shrinks its input ([`crate::model::PolicyNet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputPrep {
    pub pad: ((usize, usize), (usize, usize)),
    pub pool: usize,
}

impl InputPrep {
    /// The input as it is.
    pub const NONE: InputPrep = InputPrep {
        pad: ((0, 0), (0, 0)),
        pool: 1,
    };
}

/// The activations of one pass, reused by the next on the same thread.
#[derive(Default)]
struct Buffers {
    /// The current block's input, and its output.
    x: Vec<f32>,
    y: Vec<f32>,
    /// The first convolution's output inside a block; the input image before the stem.
    h: Vec<f32>,
    /// A segment's option-A shortcut.
    shortcut: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

impl FlatResNet {
    /// Whether [`FlatResNet::fused_forward`] runs this network (see the module's doc).
    pub fn fusable(&self) -> bool {
        let folded = |c: &ConvBn| c.packed().is_some();
        self.kernels() == Kernels::Fast
            && self.spec.family == Family::Cifar
            && folded(&self.stem)
            && self.blocks.iter().all(|b| match b {
                Block::Basic(b) => folded(&b.conv1) && folded(&b.conv2),
                Block::Bottleneck(_) => false,
            })
            && self
                .shortcuts
                .iter()
                .all(|s| !matches!(s, Shortcut::Projection(_)))
    }

    /// The eval-mode output of NCHW images `x` with the blocks `keep` says kept (all when
    /// `None`), the input first shrunk by `prep`: the logits, or the pooled features
    /// `[N, C]` of a trunk without `fc`. Only for a [`FlatResNet::fusable`] network.
    pub fn fused_forward(
        &self,
        x: &Tensor,
        keep: Option<&[bool]>,
        prep: InputPrep,
    ) -> Result<Tensor> {
        if !self.fusable() {
            bail!("fused pass: the network is not folded for the fast kernels")
        }
        if let Some(keep) = keep {
            if keep.len() != self.num_blocks() {
                bail!(
                    "policy has {} decisions, the network {} blocks",
                    keep.len(),
                    self.num_blocks()
                )
            }
        }
        let x = x.contiguous()?;
        let (n, c, h, w) = x.dims4()?;
        let (features, channels) = {
            let (storage, layout) = x.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                bail!("fused pass: the input is not on the CPU")
            };
            let images = cpu_f32(cpu, layout, "fused pass")?;
            BUFFERS.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buffers) => self.run(images, (n, c, h, w), keep, prep, &mut buffers),
                // A pass already runs on this thread (a nested task of the pool): buffers of
                // its own.
                Err(_) => self.run(images, (n, c, h, w), keep, prep, &mut Buffers::default()),
            })?
        };
        let features = Tensor::from_vec(features, (n, channels), x.device())?;
        match &self.fc {
            Some(fc) => fc.forward(&features),
            None => Ok(features),
        }
    }

    /// The pass over `images` (`[n, c, h, w]`), to the pooled features and their width.
    fn run(
        &self,
        images: &[f32],
        (n, c, h, w): (usize, usize, usize, usize),
        keep: Option<&[bool]>,
        prep: InputPrep,
        buffers: &mut Buffers,
    ) -> Result<(Vec<f32>, usize)> {
        let Buffers {
            x: cur,
            y: next,
            h: inner,
            shortcut,
        } = buffers;
        let (mut cur, mut next) = (cur, next);
        if c != self.stem.geom.cin {
            bail!(
                "fused pass: the input has {c} channels, the network takes {}",
                self.stem.geom.cin
            )
        }
        let mut shape = prepare_input(images, (n, c, h, w), prep, inner)?;
        let len = shape.pixels() * c;
        shape = conv(&self.stem, shape, &inner[..len], None, true, cur)?;
        let mut channels = self.stem.geom.cout;
        for (k, block) in self.blocks.iter().enumerate() {
            let Block::Basic(block) = block else {
                bail!("fused pass: bottleneck blocks are not fused")
            };
            let len = shape.pixels() * channels;
            let residual_shape;
            let residual: &[f32] = match self.segment_starting_at(k).map(|s| &self.shortcuts[s]) {
                Some(Shortcut::ZeroPad {
                    stride,
                    extra_channels,
                }) => {
                    let op = ShortcutA {
                        stride: *stride,
                        extra: *extra_channels,
                    };
                    residual_shape = (
                        Nhw {
                            n,
                            h: shape.h / stride,
                            w: shape.w / stride,
                        },
                        channels + extra_channels,
                    );
                    let out = residual_shape.0.pixels() * residual_shape.1;
                    grow(shortcut, out);
                    let dims = (n, shape.h, shape.w, channels);
                    pool::shortcut_a_into(&cur[..len], dims, op, &mut shortcut[..out]);
                    &shortcut[..out]
                }
                Some(Shortcut::Projection(_)) => {
                    bail!("fused pass: projection shortcuts are not fused")
                }
                Some(Shortcut::Identity) | None => {
                    residual_shape = (shape, channels);
                    &cur[..len]
                }
            };
            if keep.is_some_and(|keep| !keep[k]) {
                // A dropped block outputs its residual: the input itself, or the shortcut.
                if !std::ptr::eq(residual.as_ptr(), cur.as_ptr()) {
                    // The shortcut's buffer becomes the current activation.
                    std::mem::swap(cur, shortcut);
                }
                (shape, channels) = residual_shape;
                continue;
            }
            if block.conv1.geom.cin != channels {
                bail!(
                    "fused pass: block {k} takes {} channels, gets {channels}",
                    block.conv1.geom.cin
                )
            }
            let mid = conv(&block.conv1, shape, &cur[..len], None, true, inner)?;
            let mid_len = mid.pixels() * block.conv1.geom.cout;
            if residual.len() != conv_output_len(&block.conv2, mid)? {
                bail!("fused pass: block {k}'s residual does not fit its output")
            }
            shape = conv(
                &block.conv2,
                mid,
                &inner[..mid_len],
                Some(residual),
                true,
                next,
            )?;
            channels = block.conv2.geom.cout;
            std::mem::swap(&mut cur, &mut next);
        }
        let mut features = vec![0.0f32; n * channels];
        let len = shape.pixels() * channels;
        pool::global_avg_pool_into(&cur[..len], (n, shape.h, shape.w, channels), &mut features);
        Ok((features, channels))
    }
}

/// `prep` of NCHW `images` into `out` as NHWC; returns its size.
fn prepare_input(
    images: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    prep: InputPrep,
    out: &mut Vec<f32>,
) -> Result<Nhw> {
    let ((top, bottom), (left, right)) = prep.pad;
    let pool = prep.pool.max(1);
    let (oh, ow) = ((h + top + bottom) / pool, (w + left + right) / pool);
    if images.len() != n * c * h * w || oh == 0 || ow == 0 {
        bail!("fused pass: input {n}x{c}x{h}x{w} does not fit {prep:?}")
    }
    grow(out, n * oh * ow * c);
    if prep == InputPrep::NONE && c == 1 {
        // One channel, nothing to pad or pool: NCHW is NHWC.
        out[..images.len()].copy_from_slice(images);
        return Ok(Nhw { n, h, w });
    }
    // candle's `avg_pool2d`'s arithmetic: the sum times the window's reciprocal.
    let scale = (1.0 / (pool * pool) as f64) as f32;
    for img in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let dst = &mut out[((img * oh + oy) * ow + ox) * c..][..c];
                for (ch, d) in dst.iter_mut().enumerate() {
                    let plane = &images[(img * c + ch) * h * w..][..h * w];
                    let mut sum = 0.0f32;
                    for py in oy * pool..(oy + 1) * pool {
                        // Padded row `py` is image row `py − top`, zero outside.
                        let Some(y) = py.checked_sub(top).filter(|&y| y < h) else {
                            continue;
                        };
                        for px in ox * pool..(ox + 1) * pool {
                            if let Some(x) = px.checked_sub(left).filter(|&x| x < w) {
                                sum += plane[y * w + x];
                            }
                        }
                    }
                    *d = if pool == 1 { sum } else { sum * scale };
                }
            }
        }
    }
    Ok(Nhw { n, h: oh, w: ow })
}

/// The output length of `conv_bn` on an input of size `input`.
fn conv_output_len(conv_bn: &ConvBn, input: Nhw) -> Result<usize> {
    let g = conv_bn.geom;
    match g.output(input) {
        Some(out) => Ok(out.pixels() * g.cout),
        None => bail!("fused pass: {input:?} too small for {g:?}"),
    }
}

/// `relu(conv_bn(x) [+ residual])` from its packed weights into `out`; returns the output's
/// size.
fn conv(
    conv_bn: &ConvBn,
    input: Nhw,
    x: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
    out: &mut Vec<f32>,
) -> Result<Nhw> {
    let g = conv_bn.geom;
    let Some(packed) = conv_bn.packed() else {
        bail!("fused pass: a convolution is not folded for the fast kernels")
    };
    let (storage, layout) = packed.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("fused pass: the weights are not on the CPU")
    };
    let packed = cpu_f32(cpu, layout, "fused pass")?;
    let len = conv_output_len(conv_bn, input)?;
    if packed.len() != ops::packed_len(&g)
        || x.len() < input.pixels() * g.cin
        || residual.is_some_and(|r| r.len() != len)
    {
        bail!("fused pass: operands do not fit {g:?}")
    }
    grow(out, len);
    ops::packed_forward(&g, input, x, packed, residual, relu, &mut out[..len]);
    g.output(input)
        .ok_or_else(|| candle_core::Error::Msg(format!("fused pass: {input:?} too small")))
}

/// Grows `buffer` to at least `len` floats (its old contents are overwritten before use).
fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}
