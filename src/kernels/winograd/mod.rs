//! Winograd convolution F(2×2, 3×3) for the 3×3 stride-1 layers on the AVX2 and AVX-512
//! paths: each 2×2 block of output pixels (a tile) comes from the 4×4 input patch under it
//! with 16 multiplications per channel pair instead of 36, so the multiply work is 2.25× less
//! than the direct kernel's. AVX-512 also has F(4×4, 3×3) for the forward pass ([`f4`],
//! [`Tile`]): the same stages on 6×6 transformed tiles.
//!
//! For a tile's patch `d` (4×4) and a filter `g` (3×3), `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0 1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! (Lavin and Gray, *Fast Algorithms for Convolutional Neural Networks*, 2016). Summed over
//! input channels, the elementwise product becomes 16 independent matrix products, one per
//! position `ξ` of the 4×4 transformed tile: `M[ξ] = U[ξ] · V[ξ]`, with `U[ξ]` the tiles'
//! transformed inputs `[tiles × cin]` and `V[ξ]` the transformed weights `[cin × cout]`.
//!
//! Each task takes a band of an image's tile rows: it copies the input rows they read into a
//! zero-padded window (as the direct kernel does), transforms every tile into `U` (8 channels
//! a vector), runs the 16 products with the direct kernel's 6 × 16 register block (`V[ξ]` is
//! at most 16 KiB, so it stays in L1 while the band's tiles stream past), and transforms `M`
//! back into the output with the epilogue (bias, residual, ReLU) applied. `U` and `M` are
//! sized to stay in L2. The input gradient of these layers is such a convolution too
//! ([`super::conv::backward_input`]); the weight gradient ([`backward_weight`]) runs the
//! products the other way round, over tiles.
//!
//! The transforms add and subtract only, and `G`'s halves are exact, so the result differs
//! from the direct sum by rounding alone (`tests/kernels.rs` holds it to the GEMM within
//! 1e-5 relative).

// Off x86-64 only the dispatch remains (it never selects this kernel).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

mod f4;

use std::cell::RefCell;

use rayon::prelude::*;

use super::geometry::{band_window, ConvGeom, Epilogue, Nhw};
use super::isa::Isa;
use super::paths::{self, WinogradKernels};

/// Positions of an F(2×2, 3×3) transformed tile (4×4).
pub const POSITIONS: usize = 16;

/// Which Winograd algorithm: the output tile's edge. F(2×2, 3×3) everywhere Winograd runs;
/// F(4×4, 3×3) (a 6×6 transformed tile: 36 multiplications per 16 outputs, 2.25 per output
/// against F(2×2)'s 4) for the forward pass where a path has it and it wins ([`f4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    F2,
    F4,
}

impl Tile {
    /// Output pixels along a tile's side.
    pub const fn edge(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Positions of a transformed tile, `(edge + 2)²`.
    pub const fn positions(self) -> usize {
        (self.edge() + 2) * (self.edge() + 2)
    }

    /// `G`'s rows for this tile.
    fn g_rows(self) -> &'static [[f32; 3]] {
        match self {
            Tile::F2 => &G,
            Tile::F4 => &f4::G,
        }
    }
}

/// Whether [`forward_on`] has a kernel for `g` on `isa` with `tile` ([`fits`], on the paths
/// whose table has Winograd kernels: F(2×2) on AVX2 and AVX-512, F(4×4) on AVX-512).
pub fn supported_on(g: &ConvGeom, isa: Isa, tile: Tile) -> bool {
    paths::of(isa).winograd.is_some_and(|k| {
        (k.supports)(g)
            && match tile {
                Tile::F2 => true,
                Tile::F4 => k.f4.is_some(),
            }
    })
}

/// Whether the dispatch on `isa` gives `g` to this kernel: where the path supports it and,
/// measured, it beats the path's other kernels.
pub fn preferred_on(g: &ConvGeom, isa: Isa) -> bool {
    paths::of(isa)
        .winograd
        .is_some_and(|k| (k.supports)(g) && (k.preferred)(g))
}

/// The tile the forward pass of `g` takes on `isa` when [`preferred_on`]: F(4×4) where the
/// path has it and prefers it, measured; else F(2×2).
pub fn tile_on(g: &ConvGeom, isa: Isa) -> Tile {
    match paths::of(isa).winograd.and_then(|k| k.f4) {
        Some(f4) if (f4.preferred)(g) => Tile::F4,
        _ => Tile::F2,
    }
}

/// [`tile_on`] on the active path.
pub fn tile(g: &ConvGeom) -> Tile {
    tile_on(g, Isa::active())
}

/// The tile the weight gradient of `g` takes on `isa` when [`preferred_on`], as [`tile_on`].
pub fn weight_tile_on(g: &ConvGeom, isa: Isa) -> Tile {
    match paths::of(isa).winograd.and_then(|k| k.f4) {
        Some(f4) if (f4.weight_preferred)(g) => Tile::F4,
        _ => Tile::F2,
    }
}

/// The layers any Winograd kernel here can run: 3×3 stride-1 layers whose input channels
/// come in vectors of 8 and output channels in groups of 16, at most 64 of each (so that one
/// position's weights, `cin·cout` floats, stay in L1). A path's table narrows it further.
pub fn fits(g: &ConvGeom) -> bool {
    g.kernel == 3
        && g.stride == 1
        && g.pad <= 2
        && matches!(g.cin, 8..=64)
        && g.cin.is_multiple_of(8)
        && matches!(g.cout, 16..=64)
        && g.cout.is_multiple_of(16)
}

/// Whether the convolutions (forward, input and weight gradients) take this kernel for `g`:
/// wherever the active path prefers it ([`preferred_on`]), with the tile [`tile_on`] or
/// [`weight_tile_on`] gives. F(2×2) alone was 5–10% ahead of the AVX2 direct kernel on the
/// 16-channel layers, where the transforms cost a third of the time, and 1.5–2× on 32 and 64
/// channels; F(4×4) is another 1.2–1.6× (measured with `cargo bench --bench kernels --
/// convs`; docs/performance.md has both paths' tables).
pub fn used(g: &ConvGeom) -> bool {
    preferred_on(g, Isa::active())
}

/// `G`, row by row (the weights of taps 0, 1, 2 in each transformed position).
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Output channels per register block of the products (two AVX2 vectors).
pub(in crate::kernels) const GROUP: usize = 16;

/// Length of [`transform_weights`]' result for `g` with `tile`.
pub fn transformed_len(g: &ConvGeom, tile: Tile) -> usize {
    tile.positions() * g.cin * g.cout
}

/// The transformed weights `V[ξ][ci][co] = (G g Gᵀ)[ξ]` for each filter `g` of `weight`
/// (`[9·cin, cout]`, rows `(ky·3 + kx)·cin + ci`), stored as `[ξ][co / 16][ci][co % 16]`: the
/// products read one group of 16 output channels as one contiguous run.
pub fn transform_weights(g: &ConvGeom, tile: Tile, weight: &[f32]) -> Vec<f32> {
    let (cin, cout) = (g.cin, g.cout);
    assert!(g.kernel == 3 && weight.len() >= 9 * cin * cout);
    let g_rows = tile.g_rows();
    let n = g_rows.len();
    let mut v = vec![0.0f32; transformed_len(g, tile)];
    let tap =
        |ky: usize, kx: usize, ci: usize| &weight[((ky * 3 + kx) * cin + ci) * cout..][..cout];
    let mut gg = vec![0.0f32; n * 3 * cout];
    let mut row = vec![0.0f32; cout];
    for ci in 0..cin {
        // (G g)[a][kx] over every output channel at once.
        for (a, ga) in g_rows.iter().enumerate() {
            for kx in 0..3 {
                let dst = &mut gg[(a * 3 + kx) * cout..][..cout];
                dst.fill(0.0);
                for (ky, &c) in ga.iter().enumerate() {
                    if c != 0.0 {
                        for (d, &w) in dst.iter_mut().zip(tap(ky, kx, ci)) {
                            *d += c * w;
                        }
                    }
                }
            }
        }
        // ((G g) Gᵀ)[a][b], stored by groups of 16 output channels.
        for a in 0..n {
            for (b, gb) in g_rows.iter().enumerate() {
                row.fill(0.0);
                for (kx, &c) in gb.iter().enumerate() {
                    if c != 0.0 {
                        for (d, &w) in row.iter_mut().zip(&gg[(a * 3 + kx) * cout..][..cout]) {
                            *d += c * w;
                        }
                    }
                }
                let xi = a * n + b;
                for (group, values) in row.chunks_exact(GROUP).enumerate() {
                    v[((xi * cout / GROUP + group) * cin + ci) * GROUP..][..GROUP]
                        .copy_from_slice(values);
                }
            }
        }
    }
    v
}

/// Forward convolution as [`super::conv::forward`] on the active path, from the plain
/// `[9·cin, cout]` weights; call only when [`used`].
pub fn forward(
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    let tile = tile(g);
    let v = transform_weights(g, tile, weight);
    forward_on(Isa::active(), tile, g, input, x, &v, epilogue, out)
}

thread_local! {
    /// Each worker's padded input rows, transformed tiles and products, reused across tasks.
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers { window: Vec::new(), u: Vec::new(), m: Vec::new() }) };
}

struct Buffers {
    window: Vec<f32>,
    /// `U[ξ][tile][cin]`.
    u: Vec<f32>,
    /// `M[ξ][tile][cout]`.
    m: Vec<f32>,
}

/// [`forward`] on `isa` with `tile` from the transformed weights `v` ([`transform_weights`]
/// for that tile); the CPU must have `isa`, and `isa` must support `g` with `tile`.
#[allow(clippy::too_many_arguments)]
pub fn forward_on(
    isa: Isa,
    tile: Tile,
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    v: &[f32],
    epilogue: Epilogue,
    out: &mut [f32],
) {
    let (forward_band, _) = band_kernels(g, isa, tile);
    // The kernels read through raw pointers: the operands must hold what the shapes say.
    assert!(
        v.len() >= transformed_len(g, tile)
            && x.len() >= input.pixels() * g.cin
            && epilogue.bias.is_none_or(|b| b.len() >= g.cout),
        "operands shorter than {g:?} needs"
    );
    // No output pixels (the kernel does not fit, or an empty batch): nothing to write.
    let Some(out_nhw) = g.output(input).filter(|out| out.pixels() > 0) else {
        return;
    };
    assert!(out.len() >= out_nhw.pixels() * g.cout);
    assert!(epilogue
        .residual
        .is_none_or(|r| r.len() >= out_nhw.pixels() * g.cout));
    let row_len = out_nhw.w * g.cout;
    let band_rows = tile.edge() * band_tile_rows(g, tile, out_nhw);
    out[..out_nhw.pixels() * g.cout]
        .par_chunks_mut(row_len * out_nhw.h)
        .enumerate()
        .flat_map(|(img, image_out)| {
            image_out
                .par_chunks_mut(band_rows * row_len)
                .enumerate()
                .map(move |(b, dst)| (img, b * band_rows, dst))
        })
        .for_each(|(img, oy0, dst)| {
            BUFFERS.with(|cell| {
                let buffers = &mut *cell.borrow_mut();
                let rows = dst.len() / row_len;
                let task = (img, oy0, rows);
                let (band, u, m) = prepare(g, tile, input, out_nhw, x, task, buffers);
                // SAFETY: the CPU has `isa` (asserted above); the buffers hold what `Band`
                // says (`prepare`), and `dst` holds the band's rows.
                unsafe { forward_band(&band, v, u, m, epilogue, dst) };
            })
        });
}

/// A task's band: output rows `oy0 .. oy0 + rows` of image `img`. Copies the input rows its
/// tiles read into the window and sizes `U` and `M` (or `D`) for its tiles.
fn prepare<'a>(
    g: &'a ConvGeom,
    tile: Tile,
    input: Nhw,
    out: Nhw,
    x: &[f32],
    (img, oy0, rows): (usize, usize, usize),
    buffers: &'a mut Buffers,
) -> (Band<'a>, &'a mut [f32], &'a mut [f32]) {
    let edge = tile.edge();
    let tiles_wide = out.w.div_ceil(edge);
    let tile_rows = rows.div_ceil(edge);
    // The window covers whole tiles: edge·tiles_wide columns of output, even where the output
    // is narrower.
    let tiled = Nhw {
        n: out.n,
        h: edge * tile_rows,
        w: edge * tiles_wide,
    };
    let width = band_window(
        g,
        input,
        tiled,
        x,
        (img, oy0),
        edge * tile_rows,
        &mut buffers.window,
    );
    let tiles = tile_rows * tiles_wide;
    grow(
        &mut buffers.u,
        tile.positions() * position_stride(tiles, g.cin),
    );
    grow(
        &mut buffers.m,
        tile.positions() * position_stride(tiles, g.cout),
    );
    let band = Band {
        g,
        tile,
        window: &buffers.window,
        width,
        tiles_wide,
        tiles,
        out_w: out.w,
        rows,
        first_row: img * out.h + oy0,
    };
    (band, &mut buffers.u, &mut buffers.m)
}

/// The Winograd kernels of `isa` for `g`; panics when the CPU lacks `isa` or `isa` has no
/// kernel for `g` (a caller's error: they ask [`supported_on`] first).
fn kernels_on(g: &ConvGeom, isa: Isa) -> WinogradKernels {
    match paths::of(isa).winograd {
        Some(k) if (k.supports)(g) && isa.available() => k,
        _ => panic!("no Winograd kernel for {g:?} on {isa}"),
    }
}

/// The forward and weight-gradient band kernels of `isa` for `g` with `tile`; panics as
/// [`kernels_on`] does, or when the path has no F(4×4) kernels.
fn band_kernels(g: &ConvGeom, isa: Isa, tile: Tile) -> (paths::ForwardBand, paths::WeightBand) {
    let kernels = kernels_on(g, isa);
    match (tile, kernels.f4) {
        (Tile::F2, _) => (kernels.forward_band, kernels.weight_band),
        (Tile::F4, Some(f4)) => (f4.forward_band, f4.weight_band),
        (Tile::F4, None) => panic!("no Winograd F(4x4, 3x3) kernel on {isa}"),
    }
}

/// Tile rows per task: as many as keep `U` and `M` within about 192 KiB of L2, but no more
/// than leave 2 tasks per thread (at batch 1 a task per thread or four cost 5–15% more on the
/// policy network: idle threads, or a pass of the pool per band).
fn band_tile_rows(g: &ConvGeom, tile: Tile, out: Nhw) -> usize {
    let tiles_wide = out.w.div_ceil(tile.edge());
    let tile_rows = out.h.div_ceil(tile.edge());
    let tile_bytes = tile.positions() * (g.cin + g.cout) * 4;
    let by_cache = (192 * 1024 / tile_bytes / tiles_wide).max(1);
    let tasks_wanted = 2 * rayon::current_num_threads();
    let by_threads = (out.n * tile_rows).div_ceil(tasks_wanted).max(1);
    by_cache.min(by_threads).clamp(1, tile_rows)
}

/// Floats from one position's `[tiles × channels]` block of `U` or `M` to the next: one
/// cache line more than the block, so that the 16 blocks' rows do not fall on addresses 4 KiB
/// apart (which the CPU mistakes for one another between stores and loads; measured: up to
/// 30% slower on some bands).
pub(in crate::kernels) fn position_stride(tiles: usize, channels: usize) -> usize {
    tiles * channels + 16
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// One task's band of tiles.
pub(in crate::kernels) struct Band<'a> {
    pub(in crate::kernels) g: &'a ConvGeom,
    pub(in crate::kernels) tile: Tile,
    /// Zero-padded input rows `[e·tile_rows + 2][width][cin]` for the tile's edge `e`: tile
    /// `(r, t)` reads rows `e·r .. e·r + e + 2`, columns `e·t .. e·t + e + 2`.
    pub(in crate::kernels) window: &'a [f32],
    pub(in crate::kernels) width: usize,
    pub(in crate::kernels) tiles_wide: usize,
    pub(in crate::kernels) tiles: usize,
    /// The output's width (the last tile column is half outside it when odd).
    pub(in crate::kernels) out_w: usize,
    /// The band's output rows (its last tile row is half outside them when odd).
    pub(in crate::kernels) rows: usize,
    /// The band's first output row, counted over the whole batch (for the residual).
    pub(in crate::kernels) first_row: usize,
}

/// Gradient with respect to the weights, `[9·cin, cout]`, as
/// [`super::conv::backward_weight`], on the active path; call only when [`used`].
pub fn backward_weight(g: &ConvGeom, input: Nhw, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let isa = Isa::active();
    backward_weight_on(isa, weight_tile_on(g, isa), g, input, x, dy)
}

/// [`backward_weight`] on `isa`, which this CPU must have and which must support `g`. The
/// forward pass is linear in the transformed weights `V = G g Gᵀ`, so their gradient is
/// `dV[ξ] = Σ_tiles U[ξ]ᵀ · D[ξ]`, with `D = A dY Aᵀ` each tile's transformed output
/// gradient, and the weights' is `Gᵀ dV G`: the products run over tiles rather than over
/// output pixels × taps, 2.25× fewer multiplications again.
pub fn backward_weight_on(
    isa: Isa,
    tile: Tile,
    g: &ConvGeom,
    input: Nhw,
    x: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    let (_, weight_band) = band_kernels(g, isa, tile);
    // No output pixels (the kernel does not fit, or an empty batch): no gradient.
    let Some(out) = g.output(input).filter(|out| out.pixels() > 0) else {
        return vec![0.0; g.patch_len() * g.cout];
    };
    // The kernels read through raw pointers: the operands must hold what the shapes say.
    assert!(
        x.len() >= input.pixels() * g.cin && dy.len() >= out.pixels() * g.cout,
        "operands shorter than {g:?} needs"
    );
    let row_len = out.w * g.cout;
    let band_rows = tile.edge() * band_tile_rows(g, tile, out);
    let bands = out.h.div_ceil(band_rows);
    let dv_len = transformed_len(g, tile);
    let dv = super::ordered_sum(out.n * bands, dv_len, |task, dv: &mut [f32]| {
        let (img, oy0) = (task / bands, task % bands * band_rows);
        let rows = band_rows.min(out.h - oy0);
        BUFFERS.with(|cell| {
            let buffers = &mut *cell.borrow_mut();
            let task = (img, oy0, rows);
            let (band, u, d) = prepare(g, tile, input, out, x, task, buffers);
            let dy_band = &dy[band.first_row * row_len..][..rows * row_len];
            // SAFETY: the CPU has `isa` (asserted above); the buffers hold what `Band`
            // says (`prepare`), `dy_band` the band's rows and `dv` every position.
            unsafe { weight_band(&band, dy_band, u, d, dv) };
        });
    });
    untransform_weight_grad(g, tile, &dv)
}

/// `dW[(ky·3 + kx)·cin + ci][co] = (Gᵀ dV[ci][co] G)[ky][kx]`.
fn untransform_weight_grad(g: &ConvGeom, tile: Tile, dv: &[f32]) -> Vec<f32> {
    let (cin, cout) = (g.cin, g.cout);
    let g_rows = tile.g_rows();
    let n = g_rows.len();
    let mut dw = vec![0.0f32; 9 * cin * cout];
    let mut t = vec![0.0f32; n * 3 * cout];
    for ci in 0..cin {
        // T[a][kx] = Σ_b dV[a][b] G[b][kx].
        for a in 0..n {
            for kx in 0..3 {
                let dst = &mut t[(a * 3 + kx) * cout..][..cout];
                dst.fill(0.0);
                for (b, gb) in g_rows.iter().enumerate() {
                    let c = gb[kx];
                    if c != 0.0 {
                        let src = &dv[((a * n + b) * cin + ci) * cout..][..cout];
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d += c * s;
                        }
                    }
                }
            }
        }
        // dW[ky][kx] = Σ_a G[a][ky] T[a][kx].
        for ky in 0..3 {
            for kx in 0..3 {
                let dst = &mut dw[((ky * 3 + kx) * cin + ci) * cout..][..cout];
                for (a, ga) in g_rows.iter().enumerate() {
                    let c = ga[ky];
                    if c != 0.0 {
                        for (d, &s) in dst.iter_mut().zip(&t[(a * 3 + kx) * cout..][..cout]) {
                            *d += c * s;
                        }
                    }
                }
            }
        }
    }
    dw
}
