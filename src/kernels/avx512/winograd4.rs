//! The AVX-512 Winograd F(4×4, 3×3) transforms (the method: `crate::kernels::winograd::f4`;
//! the template: `crate::kernels::x86`), 16 channels a vector (a masked half vector for a last
//! group of 8 input channels). The products are F(2×2)'s ([`super::winograd::products`]) over
//! 36 positions.

use std::arch::x86_64::*;
use std::ops::Range;

use super::winograd::{load_channels, store_channels, store_output};
use crate::kernels::geometry::Epilogue;
use crate::kernels::winograd::{position_stride, Band};

winograd_f4_transforms!(
    "avx512f",
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_sub_ps,
    _mm512_max_ps,
    _mm512_fmadd_ps,
    _mm512_fnmadd_ps,
    _mm512_set1_ps,
    load_channels,
    store_channels,
    store_output
);
