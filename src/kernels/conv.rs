//! Convolution over channels-last (NHWC) activations as tiled implicit GEMM: a tile of output
//! pixels gathers its input windows into a small buffer (im2col for that tile only, so it stays
//! in cache), one GEMM against the `[kh·kw·cin, cout]` weight matrix writes the tile, and the
//! epilogue (bias, residual add, ReLU) runs on the tile while it is still hot. Tiles run in
//! parallel on rayon's pool; the GEMM itself is the `gemm` crate's (the one candle uses), which
//! picks AVX2/FMA, AVX-512 or NEON kernels at run time.
//!
//! Weights are HWIO, flattened to `[kh·kw·cin, cout]` row-major: row `(ky·kw + kx)·cin + ci`.

use std::cell::RefCell;

use gemm::Parallelism;
use rayon::prelude::*;

pub use super::geometry::{ConvGeom, Epilogue, Nhw};
use super::isa::Isa;

impl ConvGeom {
    /// A 1x1 stride-1 unpadded convolution reads its input rows as they are: no gather needed.
    fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.pad == 0
    }

    /// Output pixels per tile: the gathered tile (`rows × patch_len` floats) stays within about
    /// 128 KiB of L2, and there are at least two tiles per thread to share out.
    fn tile_rows(&self, rows: usize) -> usize {
        let by_cache = (128 * 1024 / 4 / self.patch_len()).clamp(16, 512);
        let by_threads = rows.div_ceil(2 * rayon::current_num_threads()).max(16);
        by_cache.min(by_threads)
    }
}

thread_local! {
    /// Each worker's gather buffer, reused across tiles and calls (no allocation per tile).
    static PATCHES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Gathers the input windows of output rows `row0 .. row0 + rows` into `patches`
/// (`rows × patch_len`, zeros where a window hangs over the padding).
fn gather_patches(
    g: &ConvGeom,
    input: Nhw,
    out: Nhw,
    x: &[f32],
    row0: usize,
    rows: usize,
    patches: &mut [f32],
) {
    let k = g.kernel;
    let cin = g.cin;
    let plen = g.patch_len();
    for r in 0..rows {
        let row = row0 + r;
        let img = row / (out.h * out.w);
        let oy = (row / out.w) % out.h;
        let ox = row % out.w;
        let dst = &mut patches[r * plen..(r + 1) * plen];
        for ky in 0..k {
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            for kx in 0..k {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                let seg = &mut dst[(ky * k + kx) * cin..(ky * k + kx + 1) * cin];
                if iy < 0 || ix < 0 || iy as usize >= input.h || ix as usize >= input.w {
                    seg.fill(0.0);
                } else {
                    let src = ((img * input.h + iy as usize) * input.w + ix as usize) * cin;
                    seg.copy_from_slice(&x[src..src + cin]);
                }
            }
        }
    }
}

/// Scatter-adds a tile of patch gradients back onto the input gradient of image `img`
/// (`dx_img` holds that one image). The transpose of [`gather_patches`].
fn scatter_patches(
    g: &ConvGeom,
    input: Nhw,
    out: Nhw,
    dpatches: &[f32],
    img_row0: usize,
    rows: usize,
    dx_img: &mut [f32],
) {
    let k = g.kernel;
    let cin = g.cin;
    let plen = g.patch_len();
    for r in 0..rows {
        let pix = img_row0 + r;
        let oy = pix / out.w;
        let ox = pix % out.w;
        let src = &dpatches[r * plen..(r + 1) * plen];
        for ky in 0..k {
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy as usize >= input.h {
                continue;
            }
            for kx in 0..k {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                if ix < 0 || ix as usize >= input.w {
                    continue;
                }
                let dst = (iy as usize * input.w + ix as usize) * cin;
                let seg = &src[(ky * k + kx) * cin..(ky * k + kx + 1) * cin];
                for (d, s) in dx_img[dst..dst + cin].iter_mut().zip(seg) {
                    *d += s;
                }
            }
        }
    }
}

/// `dst[rows × n] (+)= lhs[rows × k] · rhs[k × n]`, with `dst` row-major.
#[allow(clippy::too_many_arguments)]
fn matmul(
    rows: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    matmul_strided(
        rows,
        n,
        k,
        (dst, (n, 1)),
        accumulate,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
    )
}

/// `dst (+)= lhs · rhs`, every operand given by its (row, column) strides.
#[allow(clippy::too_many_arguments)]
fn matmul_strided(
    rows: usize,
    n: usize,
    k: usize,
    (dst, (dst_rs, dst_cs)): (&mut [f32], (usize, usize)),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    assert!(rows == 0 || n == 0 || dst.len() > (rows - 1) * dst_rs + (n - 1) * dst_cs);
    assert!(rows == 0 || k == 0 || lhs.len() > (rows - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: every index the GEMM touches lies inside the slices (checked above), and `dst`
    // does not alias the inputs (it is a distinct `&mut`).
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// The GEMM's left operand for output rows `row0 .. row0 + rows`: the input itself for a
/// pointwise convolution, else the gathered windows in `buf`.
#[allow(clippy::too_many_arguments)]
fn patches<'a>(
    g: &ConvGeom,
    input: Nhw,
    out: Nhw,
    x: &'a [f32],
    row0: usize,
    rows: usize,
    buf: &'a mut Vec<f32>,
) -> &'a [f32] {
    let plen = g.patch_len();
    if g.is_pointwise() {
        return &x[row0 * plen..(row0 + rows) * plen];
    }
    if buf.len() < rows * plen {
        buf.resize(rows * plen, 0.0);
    }
    gather_patches(g, input, out, x, row0, rows, &mut buf[..rows * plen]);
    &buf[..rows * plen]
}

/// Forward convolution: `out = epilogue(x ⊛ weight)`, NHWC in and out. 3×3 stride-1 layers
/// of up to 64 channels take the Winograd kernel where the CPU has it ([`super::winograd`]),
/// other narrow layers the direct kernel ([`super::direct`]), the rest the tiled GEMM.
pub fn forward(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    forward_with(g, input, x, weight, None, epilogue, out)
}

/// [`forward`] with the Winograd transform of the weights when the caller keeps one
/// ([`super::winograd::transform_weights`]; inference folds it into the packed weights), so
/// that it is not recomputed on every call.
pub fn forward_with(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    winograd_weights: Option<&[f32]>,
    epilogue: Epilogue,
    out: &mut [f32],
) {
    use super::winograd;
    if winograd::used(g) {
        match winograd_weights {
            Some(v) => {
                let (isa, tile) = (Isa::active(), winograd::tile(g));
                winograd::forward_on(isa, tile, g, input, x, v, epilogue, out)
            }
            None => winograd::forward(g, input, x, weight, epilogue, out),
        }
    } else if super::direct::supported(g) {
        super::direct::forward(g, input, x, weight, epilogue, out);
    } else {
        forward_gemm(g, input, x, weight, epilogue, out);
    }
}

/// [`forward`] on the tiled-GEMM path, whatever the layer.
pub fn forward_gemm(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    let Some(out_nhw) = g.output(input) else {
        return;
    };
    let rows = out_nhw.pixels();
    let plen = g.patch_len();
    let tile = g.tile_rows(rows);
    let cout = g.cout;
    out.par_chunks_mut(tile * cout)
        .enumerate()
        .for_each(|(t, dst)| {
            let row0 = t * tile;
            let n_rows = dst.len() / cout;
            PATCHES.with(|buf| {
                let mut buf = buf.borrow_mut();
                let lhs = patches(g, input, out_nhw, x, row0, n_rows, &mut buf);
                if let Some(bias) = epilogue.bias {
                    for row in dst.chunks_exact_mut(cout) {
                        row.copy_from_slice(bias);
                    }
                }
                let accumulate = epilogue.bias.is_some();
                matmul(
                    n_rows,
                    cout,
                    plen,
                    dst,
                    accumulate,
                    lhs,
                    (plen, 1),
                    weight,
                    (cout, 1),
                );
            });
            if let Some(residual) = epilogue.residual {
                let res = &residual[row0 * cout..row0 * cout + dst.len()];
                for (d, r) in dst.iter_mut().zip(res) {
                    *d += r;
                }
            }
            if epilogue.relu {
                for d in dst.iter_mut() {
                    *d = d.max(0.0);
                }
            }
        });
}

/// Gradient with respect to the input. A stride-1 convolution's is itself a stride-1
/// convolution of `dy` (kernel rotated 180°, input and output channels swapped, padding
/// `k − 1 − p`), which runs on the forward kernels with no scatter. Strided ones scatter-add
/// `dy · Wᵀ` one image per task (images' gradients are disjoint, so no synchronisation).
pub fn backward_input(g: &ConvGeom, input: Nhw, dy: &[f32], weight: &[f32], dx: &mut [f32]) {
    let Some(out_nhw) = g.output(input) else {
        dx.fill(0.0);
        return;
    };
    if g.stride == 1 && g.pad < g.kernel {
        let transposed = ConvGeom {
            kernel: g.kernel,
            stride: 1,
            pad: g.kernel - 1 - g.pad,
            cin: g.cout,
            cout: g.cin,
        };
        let rotated = rotate_transpose(g, weight);
        forward(&transposed, out_nhw, dy, &rotated, Epilogue::default(), dx);
        return;
    }
    let plen = g.patch_len();
    let img_in = input.h * input.w * g.cin;
    let img_out = out_nhw.h * out_nhw.w;
    let tile = g.tile_rows(img_out * input.n).min(img_out);
    dx.par_chunks_mut(img_in)
        .enumerate()
        .for_each(|(img, dx_img)| {
            let dy_img = &dy[img * img_out * g.cout..(img + 1) * img_out * g.cout];
            dx_img.fill(0.0);
            PATCHES.with(|buf| {
                let mut buf = buf.borrow_mut();
                if buf.len() < tile * plen {
                    buf.resize(tile * plen, 0.0);
                }
                let mut row0 = 0;
                while row0 < img_out {
                    let n_rows = tile.min(img_out - row0);
                    let dpatches = &mut buf[..n_rows * plen];
                    matmul(
                        n_rows,
                        plen,
                        g.cout,
                        dpatches,
                        false,
                        &dy_img[row0 * g.cout..],
                        (g.cout, 1),
                        weight,
                        (1, g.cout),
                    );
                    scatter_patches(g, input, out_nhw, dpatches, row0, n_rows, dx_img);
                    row0 += n_rows;
                }
            });
        });
}

/// `W'[(ky, kx, co), ci] = W[(k−1−ky, k−1−kx, ci), co]`: the weights of the transposed
/// convolution [`backward_input`] runs.
fn rotate_transpose(g: &ConvGeom, weight: &[f32]) -> Vec<f32> {
    let k = g.kernel;
    let mut rotated = vec![0.0f32; weight.len()];
    for ky in 0..k {
        for kx in 0..k {
            let src_tap = ((k - 1 - ky) * k + (k - 1 - kx)) * g.cin;
            let dst_tap = (ky * k + kx) * g.cout;
            for ci in 0..g.cin {
                for co in 0..g.cout {
                    rotated[(dst_tap + co) * g.cin + ci] = weight[(src_tap + ci) * g.cout + co];
                }
            }
        }
    }
    rotated
}

/// Gradient with respect to the weights, `[kh·kw·cin, cout]`: the layers [`forward`] runs
/// with Winograd take it here too ([`super::winograd::backward_weight`]), other narrow layers
/// the direct kernel where the CPU has it ([`super::direct::backward_weight`]), the rest the
/// GEMM.
pub fn backward_weight(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if super::winograd::used(g) {
        super::winograd::backward_weight(g, input, x, dy)
    } else if super::direct::supports_weight_grad(g) {
        super::direct::backward_weight(g, input, x, dy)
    } else {
        backward_weight_gemm(g, input, x, dy)
    }
}

/// [`backward_weight`] on the GEMM path: `dW = Σ patchesᵀ · dy` over all output pixels,
/// accumulated per group of tiles and summed in a fixed order.
pub fn backward_weight_gemm(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let plen = g.patch_len();
    let zeros = || vec![0.0f32; plen * g.cout];
    let Some(out_nhw) = g.output(input) else {
        return zeros();
    };
    let rows = out_nhw.pixels();
    let tile = g.tile_rows(rows);
    let tile_len = (tile * g.cout).max(1);
    super::ordered_sum(
        dy.len().div_ceil(tile_len),
        plen * g.cout,
        |t, acc: &mut [f32]| {
            let dy_tile = &dy[t * tile_len..((t + 1) * tile_len).min(dy.len())];
            let row0 = t * tile;
            let n_rows = dy_tile.len() / g.cout;
            if g.is_pointwise() {
                let x_tile = &x[row0 * plen..(row0 + n_rows) * plen];
                matmul(
                    plen,
                    g.cout,
                    n_rows,
                    acc,
                    true,
                    x_tile,
                    (1, plen),
                    dy_tile,
                    (g.cout, 1),
                );
            } else {
                PATCHES.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    if buf.len() < n_rows * plen {
                        buf.resize(n_rows * plen, 0.0);
                    }
                    let patches = &mut buf[..n_rows * plen];
                    gather_patches(g, input, out_nhw, x, row0, n_rows, patches);
                    matmul(
                        plen,
                        g.cout,
                        n_rows,
                        acc,
                        true,
                        patches,
                        (1, plen),
                        dy_tile,
                        (g.cout, 1),
                    );
                });
            }
        },
    )
}
