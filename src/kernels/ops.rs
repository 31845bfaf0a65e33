//! The NHWC convolution kernels as candle custom ops, so executors, the profiler and autograd
//! keep working with `Tensor`s. CPU only: on CUDA and Metal the model keeps candle's own ops.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::conv::{self, ConvGeom, Epilogue, Nhw};
use super::winograd;
use super::{cpu_f32, written_buffer};

/// Checks an NHWC activation against the geometry; returns its batch and spatial size.
fn activation(layout: &Layout, channels: usize, what: &str) -> Result<Nhw> {
    let (n, h, w, c) = layout.shape().dims4()?;
    if c != channels {
        bail!("fast conv: {what} has {c} channels, expected {channels} (NHWC)")
    }
    Ok(Nhw { n, h, w })
}

fn check_weight(layout: &Layout, rows: usize, g: &ConvGeom) -> Result<()> {
    if layout.shape().dims() != [rows, g.cout] {
        bail!(
            "fast conv: weight {:?}, expected [{rows}, {}]",
            layout.shape().dims(),
            g.cout
        )
    }
    Ok(())
}

fn output_of(g: &ConvGeom, input: Nhw) -> Result<Nhw> {
    g.output(input)
        .ok_or_else(|| candle_core::Error::Msg(format!("fast conv: {input:?} too small for {g:?}")))
}

/// Convolution without bias: `(x [N,H,W,cin], w [kh·kw·cin, cout]) → [N,H',W',cout]`, with a
/// backward pass through the same kernels (training).
#[derive(Debug, Clone, Copy)]
pub struct Conv(pub ConvGeom);

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "conv2d-nhwc"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let input = activation(xl, g.cin, "input")?;
        check_weight(wl, g.patch_len(), g)?;
        let out = output_of(g, input)?;
        let (x, w) = (cpu_f32(xs, xl, "fast conv")?, cpu_f32(ws, wl, "fast conv")?);
        // The forward kernels write every output element.
        let y = written_buffer(out.pixels() * g.cout, |y| {
            conv::forward(g, input, x, w, Epilogue::default(), y)
        });
        Ok((
            CpuStorage::F32(y),
            Shape::from((out.n, out.h, out.w, g.cout)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (n, h, wd, _) = x.dims4()?;
        let input = Nhw { n, h, w: wd };
        // The network's input (the stem's) needs no gradient: skip the pass.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &InputGrad(self.0, input))?)
        } else {
            None
        };
        let dw = x.apply_op2_no_bwd(&dy, &WeightGrad(self.0))?;
        Ok((dx, Some(dw)))
    }
}

/// `(dy, w) → dx` for an input of the given size.
struct InputGrad(ConvGeom, Nhw);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv2d-nhwc-input-grad"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, input) = (&self.0, self.1);
        if activation(dyl, g.cout, "output gradient")? != output_of(g, input)? {
            bail!("fast conv: output gradient {:?} does not fit", dyl.shape())
        }
        check_weight(wl, g.patch_len(), g)?;
        let (dy, w) = (
            cpu_f32(dys, dyl, "fast conv")?,
            cpu_f32(ws, wl, "fast conv")?,
        );
        // `backward_input` writes every element (zeros where no output pixel reads one).
        let dx = written_buffer(input.pixels() * g.cin, |dx| {
            conv::backward_input(g, input, dy, w, dx)
        });
        Ok((
            CpuStorage::F32(dx),
            Shape::from((input.n, input.h, input.w, g.cin)),
        ))
    }
}

/// `(x, dy) → dw [kh·kw·cin, cout]`.
struct WeightGrad(ConvGeom);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "conv2d-nhwc-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let input = activation(xl, g.cin, "input")?;
        if activation(dyl, g.cout, "output gradient")? != output_of(g, input)? {
            bail!("fast conv: output gradient {:?} does not fit", dyl.shape())
        }
        let dw = conv::backward_weight(
            g,
            input,
            cpu_f32(xs, xl, "fast conv")?,
            cpu_f32(dys, dyl, "fast conv")?,
        );
        Ok((CpuStorage::F32(dw), Shape::from((g.patch_len(), g.cout))))
    }
}

/// Inference convolution with its epilogue fused: the packed weight ([`pack_with_bias`])
/// carries the bias in the row after the `kh·kw·cin` weight rows (BatchNorm folded in); as
/// a [`CustomOp2`] it computes `act(x ⊛ w + b)`, as a [`CustomOp3`]
/// `act(x ⊛ w + b + residual)`. No backward.
#[derive(Debug, Clone, Copy)]
pub struct FusedConv {
    pub geom: ConvGeom,
    pub relu: bool,
}

impl FusedConv {
    fn run(
        &self,
        (xs, xl): (&CpuStorage, &Layout),
        (ps, pl): (&CpuStorage, &Layout),
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geom;
        let input = activation(xl, g.cin, "input")?;
        check_weight(pl, packed_rows(g), g)?;
        let out = output_of(g, input)?;
        let packed = cpu_f32(ps, pl, "fast conv")?;
        let residual = match residual {
            Some((rs, rl)) => {
                if activation(rl, g.cout, "residual")? != out {
                    bail!("fast conv: residual {:?} does not fit", rl.shape())
                }
                Some(cpu_f32(rs, rl, "fast conv")?)
            }
            None => None,
        };
        let x = cpu_f32(xs, xl, "fast conv")?;
        // The forward kernels write every output element.
        let y = written_buffer(out.pixels() * g.cout, |y| {
            packed_forward(g, input, x, packed, residual, self.relu, y)
        });
        Ok((
            CpuStorage::F32(y),
            Shape::from((out.n, out.h, out.w, g.cout)),
        ))
    }
}

/// `act(x ⊛ w + b [+ residual])` into `out` from a packed inference weight
/// ([`pack_with_bias`]): what [`FusedConv`] runs, for callers that keep their own buffers
/// (`crate::model::fused`). The caller checks the operands' sizes: `packed` holds
/// [`packed_len`] floats, `x` the input's pixels, `residual` and `out` the output's.
pub fn packed_forward(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    packed: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    let (weight, rest) = packed.split_at(g.patch_len() * g.cout);
    let (bias, winograd_weights) = rest.split_at(g.cout);
    let epilogue = Epilogue {
        bias: Some(bias),
        residual,
        relu,
    };
    let winograd_weights = Some(winograd_weights).filter(|v| !v.is_empty());
    conv::forward_with(g, input, x, weight, winograd_weights, epilogue, out)
}

/// Floats in the packed inference weight of `g` ([`pack_with_bias`]).
pub fn packed_len(g: &ConvGeom) -> usize {
    packed_rows(g) * g.cout
}

/// Rows of the packed inference weight of `g` ([`pack_with_bias`]).
fn packed_rows(g: &ConvGeom) -> usize {
    let winograd_rows = if winograd::used(g) {
        winograd::transformed_len(g, winograd::tile(g)) / g.cout
    } else {
        0
    };
    g.patch_len() + 1 + winograd_rows
}

impl CustomOp2 for FusedConv {
    fn name(&self) -> &'static str {
        "conv2d-nhwc-fused"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ps, pl), None)
    }
}

impl CustomOp3 for FusedConv {
    fn name(&self) -> &'static str {
        "conv2d-nhwc-fused-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ps, pl), Some((rs, rl)))
    }
}

/// `conv(x, w)` with autograd; `x` NHWC, `w` `[kh·kw·cin, cout]` (see [`hwio`]).
pub fn conv2d(x: &Tensor, w: &Tensor, geom: ConvGeom) -> Result<Tensor> {
    ensure_f32(x)?;
    x.contiguous()?.apply_op2(&w.contiguous()?, Conv(geom))
}

/// `act(x ⊛ w + b [+ residual])` with the bias packed as the weight's last row.
pub fn fused_conv2d(
    x: &Tensor,
    packed: &Tensor,
    residual: Option<&Tensor>,
    geom: ConvGeom,
    relu: bool,
) -> Result<Tensor> {
    ensure_f32(x)?;
    let op = FusedConv { geom, relu };
    let x = x.contiguous()?;
    match residual {
        Some(r) => x.apply_op3_no_bwd(packed, &r.contiguous()?, &op),
        None => x.apply_op2_no_bwd(packed, &op),
    }
}

fn ensure_f32(x: &Tensor) -> Result<()> {
    if x.dtype() != DType::F32 {
        bail!("fast conv kernels take f32, got {:?}", x.dtype())
    }
    Ok(())
}

/// PyTorch's `[cout, cin, kh, kw]` weight as the kernels' `[kh·kw·cin, cout]` (differentiable).
pub fn hwio(weight: &Tensor) -> Result<Tensor> {
    let (cout, cin, kh, kw) = weight.dims4()?;
    weight
        .permute((2, 3, 1, 0))?
        .contiguous()?
        .reshape((kh * kw * cin, cout))
}

/// The packed inference weight of a layer `geom`: [`hwio`] with the bias appended as one
/// more row, then, where the layer takes the Winograd kernel, the weights' transform
/// (`16·cin` or `36·cin` rows, [`winograd::transform_weights`]) so that it is computed once, not per call.
pub fn pack_with_bias(weight: &Tensor, bias: &Tensor, geom: ConvGeom) -> Result<Tensor> {
    let plain = Tensor::cat(&[&hwio(weight)?, &bias.unsqueeze(0)?], 0)?.contiguous()?;
    if !winograd::used(&geom) {
        return Ok(plain);
    }
    let (rows, cout) = plain.dims2()?;
    if rows != geom.patch_len() + 1 || cout != geom.cout {
        bail!(
            "fast conv: weight {:?} does not fit {geom:?}",
            weight.shape().dims()
        )
    }
    let values = plain.flatten_all()?.to_vec1::<f32>()?;
    let tile = winograd::tile(&geom);
    let transformed = winograd::transform_weights(&geom, tile, &values[..geom.patch_len() * cout]);
    let transformed = Tensor::from_vec(
        transformed,
        (winograd::transformed_len(&geom, tile) / cout, cout),
        weight.device(),
    )?;
    Tensor::cat(&[&plain, &transformed], 0)?.contiguous()
}
