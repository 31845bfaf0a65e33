//! Fresh weights drawn from the run's seed. candle draws a new variable's initial values from
//! the thread's unseeded generator, so two runs with the same `--seed` would start from
//! different networks; [`seeded`] draws them from [`Rng`] instead, with the distributions
//! candle's layers ask for ([`Init`]). Each variable's generator is seeded by the run's seed
//! and the variable's name, so the draw does not depend on the order layers are built in.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};

use crate::rng::{mix64, Rng};

/// A variable builder over `varmap` whose fresh variables come from `seed`.
pub fn seeded<'a>(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'a> {
    let backend = SeededVars {
        varmap: varmap.clone(),
        seed,
    };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}

struct SeededVars {
    varmap: VarMap,
    seed: u64,
}

/// FNV-1a of a variable's name.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Uniform in [0, 1) with 53 bits.
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Standard normal (Box–Muller; the first of each pair).
fn normal(rng: &mut Rng) -> f64 {
    let u = 1.0 - unit(rng); // (0, 1]: the log is finite
    let v = unit(rng);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `count` values drawn as `init` asks, from `rng`.
fn draw(init: &Init, shape: &Shape, rng: &mut Rng) -> Vec<f32> {
    let count = shape.elem_count();
    let uniform = |lo: f64, up: f64, rng: &mut Rng| lo + (up - lo) * unit(rng);
    let values: Box<dyn FnMut(&mut Rng) -> f64> = match *init {
        Init::Const(value) => Box::new(move |_| value),
        Init::Uniform { lo, up } => Box::new(move |rng| uniform(lo, up, rng)),
        Init::Randn { mean, stdev } => Box::new(move |rng| mean + stdev * normal(rng)),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            // candle's own formula (candle_nn::init): std = gain / √fan.
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    Box::new(move |rng| uniform(-bound, bound, rng))
                }
                NormalOrUniform::Normal => Box::new(move |rng| std * normal(rng)),
            }
        }
    };
    let mut values = values;
    (0..count).map(|_| values(rng) as f32).collect()
}

impl SimpleBackend for SeededVars {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("variable map poisoned".to_string()))?;
        if let Some(var) = vars.get(name) {
            let tensor = var.as_tensor();
            if tensor.shape() != &shape {
                candle_core::bail!(
                    "shape mismatch for {name}, got {:?}, expected {shape:?}",
                    tensor.shape()
                );
            }
            return Ok(tensor.clone());
        }
        let mut rng = Rng::new(mix64(self.seed ^ mix64(name_hash(name))));
        let values = draw(&init, &shape, &mut rng);
        let tensor = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        SimpleBackend::get_unchecked(&self.varmap, name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.varmap, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_weights_and_another_seed_others() {
        let weights = |seed: u64| {
            let varmap = VarMap::new();
            let vb = seeded(&varmap, seed, &Device::Cpu);
            let conv =
                candle_nn::conv2d_no_bias(16, 32, 3, Default::default(), vb.pp("conv")).unwrap();
            let uniform = vb
                .get_with_hints(
                    (32, 16, 3, 3),
                    "u",
                    candle_nn::init::DEFAULT_KAIMING_UNIFORM,
                )
                .unwrap();
            let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (values(conv.weight()), values(&uniform))
        };
        let (a, b, c) = (weights(7), weights(7), weights(8));
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
        // candle's Kaiming for a 16·3·3 fan-in and ReLU: std √2/12; uniform bound √6/12.
        let std = (a.0.iter().map(|w| w * w).sum::<f32>() / a.0.len() as f32).sqrt();
        assert!((std / (2f32.sqrt() / 12.0) - 1.0).abs() < 0.05, "std {std}");
        let bound = 6f32.sqrt() / 12.0;
        assert!(a.1.iter().all(|w| w.abs() <= bound));
        let mean_abs = a.1.iter().map(|w| w.abs()).sum::<f32>() / a.1.len() as f32;
        assert!((mean_abs - bound / 2.0).abs() < 0.01, "mean |w| {mean_abs}");
    }

    #[test]
    fn normal_draws_have_the_asked_moments() {
        let mut rng = Rng::new(3);
        let init = Init::Randn {
            mean: 1.0,
            stdev: 2.0,
        };
        let v = draw(&init, &Shape::from(20_000), &mut rng);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
    }
}
