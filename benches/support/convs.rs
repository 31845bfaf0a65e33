//! Each convolution shape of the CIFAR ResNets at batch 64 on its own, in GFLOP/s, on every
//! path this CPU has (the tiled GEMM, the direct and the Winograd kernels per instruction set), forward and weight gradient, next to the CPU's measured FMA peak (each the best of
//! 11 runs). Winograd's GFLOP/s count the direct convolution's work (`2·pixels·9·cin·cout`),
//! so they compare times; it does 2.25× fewer multiplications.

use std::time::Instant;

use blockdrop::kernels::conv::{self, Epilogue, Nhw};
use blockdrop::kernels::direct;
use blockdrop::kernels::isa::Isa;
use blockdrop::kernels::winograd::{self, Tile};
use blockdrop::kernels::ConvGeom;
use blockdrop::stats::quantile;

pub const BATCH: usize = 64;

/// The shapes: name, geometry, input side.
pub fn shapes() -> Vec<(&'static str, ConvGeom, usize)> {
    let g = |kernel, stride, cin, cout| ConvGeom {
        kernel,
        stride,
        pad: kernel / 2,
        cin,
        cout,
    };
    vec![
        ("stem 3x3 1→16 @28", g(3, 1, 1, 16), 28),
        ("stem 3x3 3→16 @32", g(3, 1, 3, 16), 32),
        ("3x3 16→16 @32", g(3, 1, 16, 16), 32),
        ("3x3/2 16→32 @32", g(3, 2, 16, 32), 32),
        ("3x3 32→32 @16", g(3, 1, 32, 32), 16),
        ("3x3/2 32→64 @16", g(3, 2, 32, 64), 16),
        ("3x3 64→64 @8", g(3, 1, 64, 64), 8),
        ("3x3 16→16 @28", g(3, 1, 16, 16), 28),
        ("3x3 32→32 @14", g(3, 1, 32, 32), 14),
        ("3x3 64→64 @7", g(3, 1, 64, 64), 7),
    ]
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = blockdrop::rng::Rng::new(seed);
    (0..len).map(|_| rng.uniform() - 0.5).collect()
}

/// GFLOP/s of `f`, which does `flops` of work: the best of 11 runs after a warm-up run. A
/// kernel's speed is what it reaches when nothing else runs; on a shared machine the median
/// drifts by ±15% from run to run, the best by a few percent.
fn gflops(flops: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        f();
        samples.push(flops / (start.elapsed().as_secs_f64() * 1e9));
    }
    quantile(&samples, 1.0)
}

/// A convolution's work at batch 64: `2·pixels·patch·cout`.
fn conv_flops(g: &ConvGeom, side: usize) -> f64 {
    let out = g
        .output(Nhw {
            n: BATCH,
            h: side,
            w: side,
        })
        .map_or(0, |o| o.pixels());
    2.0 * (out * g.patch_len() * g.cout) as f64
}

/// A batch-64 input for `g` at `side`, and its input and output sizes.
fn operands(g: &ConvGeom, side: usize) -> Option<(Nhw, Nhw, Vec<f32>)> {
    let input = Nhw {
        n: BATCH,
        h: side,
        w: side,
    };
    let out = g.output(input)?;
    Some((input, out, random(input.pixels() * g.cin, 1)))
}

/// A path through the convolutions.
#[derive(Debug, Clone, Copy)]
pub enum Path {
    Gemm,
    Direct(Isa),
    Winograd(Isa, Tile),
}

impl Path {
    fn name(self) -> String {
        match self {
            Path::Gemm => "gemm".into(),
            Path::Direct(isa) => format!("direct {isa}"),
            Path::Winograd(isa, Tile::F2) => format!("winograd {isa}"),
            Path::Winograd(isa, Tile::F4) => format!("wino F4 {isa}"),
        }
    }
}

/// Forward GFLOP/s of one path (Winograd from weights transformed beforehand, as inference
/// keeps them); `None` where the path has no kernel for the layer.
pub fn forward(g: &ConvGeom, side: usize, path: Path) -> Option<f64> {
    let has_kernel = match path {
        Path::Gemm => true,
        Path::Direct(isa) => isa.available() && direct::supported_on(g, isa),
        Path::Winograd(isa, tile) => isa.available() && winograd::supported_on(g, isa, tile),
    };
    if !has_kernel {
        return None;
    }
    let (input, out, x) = operands(g, side)?;
    let w = random(g.patch_len() * g.cout, 2);
    let bias = random(g.cout, 3);
    let mut y = vec![0.0f32; out.pixels() * g.cout];
    let epilogue = Epilogue {
        bias: Some(&bias),
        residual: None,
        relu: true,
    };
    let v = match path {
        Path::Winograd(_, tile) => winograd::transform_weights(g, tile, &w),
        _ => Vec::new(),
    };
    Some(gflops(conv_flops(g, side), || match path {
        Path::Gemm => conv::forward_gemm(g, input, &x, &w, epilogue, &mut y),
        Path::Direct(isa) => direct::forward_on(isa, g, input, &x, &w, epilogue, &mut y),
        Path::Winograd(isa, tile) => {
            winograd::forward_on(isa, tile, g, input, &x, &v, epilogue, &mut y)
        }
    }))
}

/// Forward GFLOP/s as the network calls it: the candle op on tensors, a fresh output each
/// call, on the active path.
pub fn forward_op(g: &ConvGeom, side: usize) -> f64 {
    use candle_core::{Device, Tensor};
    let x = Tensor::from_vec(
        random(BATCH * side * side * g.cin, 1),
        (BATCH, side, side, g.cin),
        &Device::Cpu,
    )
    .and_then(|x| x.contiguous());
    let packed = Tensor::from_vec(
        random(g.patch_len() * g.cout, 2),
        (g.cout, g.cin, g.kernel, g.kernel),
        &Device::Cpu,
    )
    .and_then(|w| {
        let bias = Tensor::from_vec(random(g.cout, 3), g.cout, &Device::Cpu)?;
        blockdrop::kernels::ops::pack_with_bias(&w, &bias, *g)
    });
    let (Ok(x), Ok(packed)) = (x, packed) else {
        return f64::NAN;
    };
    gflops(conv_flops(g, side), || {
        std::hint::black_box(
            blockdrop::kernels::ops::fused_conv2d(&x, &packed, None, *g, true).ok(),
        );
    })
}

/// Weight-gradient GFLOP/s of one path, as [`forward`].
pub fn weight_grad(g: &ConvGeom, side: usize, path: Path) -> Option<f64> {
    let has_kernel = match path {
        Path::Gemm => true,
        Path::Direct(isa) => isa.available() && direct::supports_weight_grad_on(g, isa),
        Path::Winograd(isa, tile) => isa.available() && winograd::supported_on(g, isa, tile),
    };
    if !has_kernel {
        return None;
    }
    let (input, out, x) = operands(g, side)?;
    let dy = random(out.pixels() * g.cout, 2);
    Some(gflops(conv_flops(g, side), || {
        std::hint::black_box(match path {
            Path::Gemm => conv::backward_weight_gemm(g, input, &x, &dy),
            Path::Direct(isa) => direct::backward_weight_on(isa, g, input, &x, &dy),
            Path::Winograd(isa, tile) => winograd::backward_weight_on(isa, tile, g, input, &x, &dy),
        });
    }))
}

/// The CPU's measured single-precision FMA peak on the active path's vectors, all threads:
/// 12 independent FMA chains per thread (enough to cover the FMA latency on two pipes).
pub fn fma_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use rayon::prelude::*;
        let isa = Isa::active();
        if !matches!(isa, Isa::Avx2 | Isa::Avx512) {
            return None;
        }
        const ITERS: usize = 20_000_000;
        let threads = rayon::current_num_threads();
        let lanes = if isa == Isa::Avx512 { 16 } else { 8 };
        let flops = (threads * ITERS * 12 * lanes * 2) as f64;
        Some(gflops(flops, || {
            (0..threads).into_par_iter().for_each(|_| {
                // SAFETY: the active path is one this CPU has.
                let sum = unsafe {
                    if isa == Isa::Avx512 {
                        fma_chains_avx512(ITERS)
                    } else {
                        fma_chains_avx2(ITERS)
                    }
                };
                std::hint::black_box(sum);
            })
        }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    _mm256_storeu_ps(
        out.as_mut_ptr(),
        acc.iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v)),
    );
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(1.0); 12];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    _mm512_reduce_add_ps(
        acc.iter()
            .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v)),
    )
}

/// Prints the table: GEMM and each direct path per shape, forward then weight gradient.
pub fn print_table() {
    let available = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|isa| isa.available());
    let paths: Vec<Path> = std::iter::once(Path::Gemm)
        .chain(available.clone().map(Path::Direct))
        .chain(available.clone().map(|isa| Path::Winograd(isa, Tile::F2)))
        .chain(available.map(|isa| Path::Winograd(isa, Tile::F4)))
        // F(4×4) columns only for the paths that have it.
        .filter(|path| match *path {
            Path::Winograd(isa, tile) => winograd::supported_on(&shapes()[2].1, isa, tile),
            _ => true,
        })
        .collect();
    let skipped: Vec<&str> = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|isa| !isa.available())
        .map(Isa::name)
        .collect();
    if !skipped.is_empty() {
        println!(
            "  (this CPU has no {}: those columns are left out)",
            skipped.join(", ")
        );
    }
    if let Some(peak) = fma_peak_gflops() {
        println!(
            "  measured FMA peak on the {} path: {peak:.0} GFLOP/s ({} threads)",
            Isa::active(),
            rayon::current_num_threads()
        );
    }
    // Three passes over every cell, keeping each cell's best: noise on a shared machine comes
    // in bursts of seconds, which one pass's best-of-11 does not always outlast.
    const PASSES: usize = 3;
    type Measure = fn(&ConvGeom, usize, Path) -> Option<f64>;
    let tables: [(&str, Measure); 2] = [("forward", forward), ("weight gradient", weight_grad)];
    let mut best = vec![vec![vec![None::<f64>; paths.len()]; shapes().len()]; tables.len()];
    for _ in 0..PASSES {
        for (t, (_, measure)) in tables.iter().enumerate() {
            for (s, (_, g, side)) in shapes().into_iter().enumerate() {
                for (p, path) in paths.iter().enumerate() {
                    if let Some(v) = measure(&g, side, *path) {
                        let cell = &mut best[t][s][p];
                        *cell = Some(cell.map_or(v, |b: f64| b.max(v)));
                    }
                }
            }
        }
    }
    println!(
        "  forward as the network calls it (candle op, fresh output), {} path:",
        Isa::active()
    );
    for (shape, g, side) in shapes() {
        println!("  {shape:<20} {:>14.1}", forward_op(&g, side));
    }
    for (t, (what, _)) in tables.iter().enumerate() {
        print!("  {what:<20}");
        for p in &paths {
            print!(" {:>14}", p.name());
        }
        println!("   GFLOP/s, batch {BATCH}, best of {PASSES} passes");
        for (s, (shape, _, _)) in shapes().into_iter().enumerate() {
            print!("  {shape:<20}");
            for cell in &best[t][s] {
                match cell {
                    Some(v) => print!(" {v:>14.1}"),
                    None => print!(" {:>14}", "-"),
                }
            }
            println!();
        }
    }
}
