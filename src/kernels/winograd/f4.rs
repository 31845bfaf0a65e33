//! Winograd F(4×4, 3×3) (the forward pass only; `super::Tile::F4`): each 4×4 block of output
//! pixels comes from the 6×6 input patch under it, `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, with the
//! interpolation points 0, ±1, ±2 and ∞ (Lavin and Gray, 2016):
//!
//! ```text
//!      ⎡4  0 −5  0  1  0⎤        ⎡  1/4     0     0 ⎤
//!      ⎢0 −4 −4  1  1  0⎥        ⎢ −1/6  −1/6  −1/6 ⎥        ⎡1  1  1  1  1  0⎤
//! Bᵀ = ⎢0  4 −4 −1  1  0⎥    G = ⎢ −1/6   1/6  −1/6 ⎥   Aᵀ = ⎢0  1 −1  2 −2  0⎥
//!      ⎢0 −2 −1  2  1  0⎥        ⎢ 1/24  1/12   1/6 ⎥        ⎢0  1  1  4  4  0⎥
//!      ⎢0  2 −1 −2  1  0⎥        ⎢ 1/24 −1/12   1/6 ⎥        ⎣0  1 −1  8 −8  1⎦
//!      ⎣0  4  0 −5  0  1⎦        ⎣   0     0     1  ⎦
//! ```
//!
//! 36 products per 16 outputs: 2.25 multiplications per output pixel and channel pair, against
//! F(2×2)'s 4 and the direct sum's 9. The price is rounding: `G`'s sixths are inexact and the
//! transforms scale by up to 8, so the result strays further from the direct sum than
//! F(2×2)'s (`tests/kernels.rs` holds both to the GEMM within 1e-5 relative). A tile past
//! the output's edge is computed whole and cropped, so maps whose side is not a multiple of 4
//! (Fashion-MNIST's 14 and 7) waste up to 30% of the work.

/// `G`, row by row (the weights of taps 0, 1, 2 in each transformed position).
pub(super) const G: [[f32; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
