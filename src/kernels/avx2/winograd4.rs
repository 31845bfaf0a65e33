//! The AVX2 Winograd F(4×4, 3×3) transforms (the method: `crate::kernels::winograd::f4`; the
//! template: `crate::kernels::x86`), 8 channels a vector. The products are F(2×2)'s
//! ([`super::winograd::products`]) over 36 positions.

use std::arch::x86_64::*;
use std::ops::Range;

use super::winograd::{load_channels, store_channels, store_output};
use crate::kernels::geometry::Epilogue;
use crate::kernels::winograd::{position_stride, Band};

winograd_f4_transforms!(
    "avx2,fma",
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_max_ps,
    _mm256_fmadd_ps,
    _mm256_fnmadd_ps,
    _mm256_set1_ps,
    load_channels,
    store_channels,
    store_output
);
