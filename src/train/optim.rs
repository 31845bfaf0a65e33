//! The reference's optimisers with PyTorch's update rules, and state that can be saved and
//! restored by parameter name (so `--resume` continues with momentum and moments intact):
//! SGD with momentum and weight decay for the base network, Adam for the policy and the joint
//! finetuning.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Trainable parameters by name (BatchNorm running statistics are not parameters).
pub type Params = Vec<(String, Var)>;

/// The variables of `varmap` whose names start with one of `prefixes`, running statistics
/// left out, sorted by name.
pub fn params(varmap: &candle_nn::VarMap, prefixes: &[&str]) -> Params {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut params: Params = data
        .iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.starts_with(p)))
        .filter(|(name, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `buf = μ·buf + (g + λ·p)`, `p −= lr·buf` (PyTorch's SGD, dampening 0, not Nesterov).
    Sgd { momentum: f64, weight_decay: f64 },
    /// PyTorch's Adam (β = 0.9, 0.999, ε = 1e-8), with L2 weight decay added to the gradient.
    Adam { weight_decay: f64 },
}

pub struct Optimizer {
    kind: Kind,
    params: Params,
    /// SGD: the momentum buffer; Adam: first and second moments.
    first: Vec<Option<Tensor>>,
    second: Vec<Option<Tensor>>,
    pub steps: u64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Optimizer {
    pub fn new(kind: Kind, params: Params) -> Self {
        let n = params.len();
        Self {
            kind,
            params,
            first: vec![None; n],
            second: vec![None; n],
            steps: 0,
        }
    }

    /// One update with learning rate `lr`; parameters without a gradient are left alone. On
    /// the CPU each parameter and its state are updated in place, one pass each
    /// ([`in_place`]); elsewhere with candle's operators, the same arithmetic.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.update(grads, lr, true)
    }

    /// [`Optimizer::step`], in place where `in_place_allowed` and the tensors allow.
    fn update(&mut self, grads: &GradStore, lr: f64, in_place_allowed: bool) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            if in_place_allowed && in_place::applies(var.as_tensor(), grad) {
                let p = var.as_tensor();
                let zeros = || p.zeros_like();
                match self.kind {
                    Kind::Sgd {
                        momentum,
                        weight_decay,
                    } => {
                        let buf = match &self.first[i] {
                            Some(buf) => buf.clone(),
                            None => zeros()?,
                        };
                        // Kept first (a handle on the same storage), so that an error below
                        // leaves the state in place.
                        self.first[i] = Some(buf.clone());
                        buf.inplace_op3(grad, p, &in_place::momentum(momentum, weight_decay))?;
                        p.inplace_op3(&buf, &buf, &in_place::descend(lr))?;
                    }
                    Kind::Adam { weight_decay } => {
                        let m = match &self.first[i] {
                            Some(m) => m.clone(),
                            None => zeros()?,
                        };
                        let v = match &self.second[i] {
                            Some(v) => v.clone(),
                            None => zeros()?,
                        };
                        // Kept first (handles on the same storage), as for SGD.
                        self.first[i] = Some(m.clone());
                        self.second[i] = Some(v.clone());
                        m.inplace_op3(grad, p, &in_place::moment(BETA1, false, weight_decay))?;
                        v.inplace_op3(grad, p, &in_place::moment(BETA2, true, weight_decay))?;
                        let corrections = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
                        let op = in_place::adam_step(lr, corrections.0, corrections.1);
                        p.inplace_op3(&m, &v, &op)?;
                    }
                }
                continue;
            }
            // Detached: the update must not record an autograd graph, or each step's buffers
            // would keep every earlier step's alive.
            let p = var.as_tensor().detach();
            let grad = grad.detach();
            let p = &p;
            let grad = &grad;
            match self.kind {
                Kind::Sgd {
                    momentum,
                    weight_decay,
                } => {
                    let g = (grad + (p * weight_decay)?)?;
                    let buf = match &self.first[i] {
                        Some(buf) if momentum > 0.0 => ((buf * momentum)? + g)?,
                        _ => g,
                    };
                    var.set(&(p - (&buf * lr)?)?)?;
                    self.first[i] = Some(buf);
                }
                Kind::Adam { weight_decay } => {
                    let g = if weight_decay > 0.0 {
                        (grad + (p * weight_decay)?)?
                    } else {
                        grad.clone()
                    };
                    let m = match &self.first[i] {
                        Some(m) => ((m * BETA1)? + (&g * (1.0 - BETA1))?)?,
                        None => (&g * (1.0 - BETA1))?,
                    };
                    let v = match &self.second[i] {
                        Some(v) => ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?,
                        None => (g.sqr()? * (1.0 - BETA2))?,
                    };
                    let m_hat = (&m / (1.0 - BETA1.powi(t)))?;
                    let v_hat = (&v / (1.0 - BETA2.powi(t)))?;
                    let update = (m_hat / (v_hat.sqrt()? + EPS)?)?;
                    var.set(&(p - (update * lr)?)?)?;
                    self.first[i] = Some(m);
                    self.second[i] = Some(v);
                }
            }
        }
        Ok(())
    }

    /// The state as named tensors (`first.NAME`, `second.NAME`) for a checkpoint.
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            // Copies: the step updates the buffers in place.
            if let Some(t) = &self.first[i] {
                out.insert(format!("first.{name}"), t.copy()?);
            }
            if let Some(t) = &self.second[i] {
                out.insert(format!("second.{name}"), t.copy()?);
            }
        }
        Ok(out)
    }

    /// Restores [`Optimizer::state`]; a parameter missing from `state` starts fresh.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (slot, key) in [
                (&mut self.first[i], format!("first.{name}")),
                (&mut self.second[i], format!("second.{name}")),
            ] {
                *slot = match state.get(&key) {
                    // A copy: the step updates the buffers in place.
                    Some(t) if t.shape() == var.shape() => Some(t.to_device(var.device())?.copy()?),
                    Some(t) => candle_core::bail!(
                        "optimizer state {key} is {:?}, parameter is {:?}",
                        t.shape(),
                        var.shape()
                    ),
                    None => None,
                };
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The updates as in-place candle ops over contiguous f32 CPU tensors: one pass over a
/// parameter and its state, no new tensor per step. The arithmetic is the operator path's,
/// element by element, with the same f32 constants.
mod in_place {
    use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor};

    /// Whether `p` and its gradient take the in-place update.
    pub fn applies(p: &Tensor, grad: &Tensor) -> bool {
        let cpu_f32 = |t: &Tensor| {
            t.device().is_cpu()
                && t.dtype() == candle_core::DType::F32
                && t.is_contiguous()
                && t.shape() == p.shape()
        };
        cpu_f32(p) && cpu_f32(grad)
    }

    fn slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("optimizer: non-contiguous state".into()))?;
        match storage {
            CpuStorage::F32(data) => Ok(&mut data[start..end]),
            _ => candle_core::bail!("optimizer: the state is not f32"),
        }
    }

    fn slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
        crate::kernels::cpu_f32(storage, layout, "optimizer")
    }

    /// `dst[i] ← f(dst[i], a[i], b[i])` over three tensors of one shape: every update below
    /// is one of these, named for candle's error messages.
    pub struct Update<F> {
        pub name: &'static str,
        pub f: F,
    }

    impl<F: Fn(f32, f32, f32) -> f32> InplaceOp3 for Update<F> {
        fn name(&self) -> &'static str {
            self.name
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            a_s: &CpuStorage,
            a_l: &Layout,
            b_s: &CpuStorage,
            b_l: &Layout,
        ) -> Result<()> {
            let (a, b) = (slice(a_s, a_l)?, slice(b_s, b_l)?);
            for ((d, &a), &b) in slice_mut(dst, dst_l)?.iter_mut().zip(a).zip(b) {
                *d = (self.f)(*d, a, b);
            }
            Ok(())
        }
    }

    /// SGD's momentum buffer `buf ← μ·buf + (g + λ·p)` (sources `g`, `p`); with μ = 0,
    /// `buf ← g + λ·p`.
    pub fn momentum(momentum: f64, weight_decay: f64) -> Update<impl Fn(f32, f32, f32) -> f32> {
        let (mu, wd) = (momentum as f32, weight_decay as f32);
        let f = move |buf: f32, g: f32, p: f32| {
            let g = g + p * wd;
            if momentum > 0.0 {
                buf * mu + g
            } else {
                g
            }
        };
        Update {
            name: "sgd-momentum",
            f,
        }
    }

    /// `p ← p − lr·u` (sources `u`, and `u` again: the second is unused).
    pub fn descend(lr: f64) -> Update<impl Fn(f32, f32, f32) -> f32> {
        let lr = lr as f32;
        Update {
            name: "descend",
            f: move |p: f32, u: f32, _: f32| p - u * lr,
        }
    }

    /// Adam's moment `m ← β·m + (1 − β)·f(g + λ·p)`, `f` the identity (`square` false) or
    /// the square; sources `g`, `p`.
    pub fn moment(
        beta: f64,
        square: bool,
        weight_decay: f64,
    ) -> Update<impl Fn(f32, f32, f32) -> f32> {
        let (b, rest, wd) = (beta as f32, (1.0 - beta) as f32, weight_decay as f32);
        let f = move |m: f32, g: f32, p: f32| {
            let g = if weight_decay > 0.0 { g + p * wd } else { g };
            let g = if square { g * g } else { g };
            m * b + g * rest
        };
        Update {
            name: "adam-moment",
            f,
        }
    }

    /// `p ← p − lr·m̂/(√v̂ + ε)`, `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)` (sources `m`, `v`).
    pub fn adam_step(
        lr: f64,
        first_correction: f64,
        second_correction: f64,
    ) -> Update<impl Fn(f32, f32, f32) -> f32> {
        let first = (1.0 / first_correction) as f32;
        let second = (1.0 / second_correction) as f32;
        let (eps, lr) = (super::EPS as f32, lr as f32);
        Update {
            name: "adam-step",
            f: move |p: f32, m: f32, v: f32| p - m * first / ((v * second).sqrt() + eps) * lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_param(value: f32) -> (Var, Params) {
        let var = Var::new(&[value], &Device::Cpu).unwrap();
        (var.clone(), vec![("w".into(), var)])
    }

    fn value(var: &Var) -> f32 {
        var.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    /// Minimising w² from w = 1: hand-computed PyTorch updates.
    #[test]
    fn sgd_with_momentum_and_weight_decay_matches_pytorch() {
        let (w, params) = one_param(1.0);
        let mut opt = Optimizer::new(
            Kind::Sgd {
                momentum: 0.9,
                weight_decay: 0.1,
            },
            params,
        );
        // step 1: g = 2 + 0.1 = 2.1, buf = 2.1, w = 1 − 0.1·2.1 = 0.79
        opt.step(&w.as_tensor().sqr().unwrap().backward().unwrap(), 0.1)
            .unwrap();
        assert!((value(&w) - 0.79).abs() < 1e-6);
        // step 2: g = 1.58 + 0.079 = 1.659, buf = 0.9·2.1 + 1.659 = 3.549, w = 0.79 − 0.3549
        opt.step(&w.as_tensor().sqr().unwrap().backward().unwrap(), 0.1)
            .unwrap();
        assert!((value(&w) - 0.4351).abs() < 1e-5);
    }

    /// The in-place updates against the operator path, bit for bit, over several steps of
    /// every kind (momentum 0 included), from the same random parameters and gradients.
    #[test]
    fn in_place_updates_match_the_operator_path() {
        let kinds = [
            Kind::Sgd {
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            Kind::Sgd {
                momentum: 0.0,
                weight_decay: 0.0,
            },
            Kind::Adam { weight_decay: 0.0 },
            Kind::Adam { weight_decay: 1e-3 },
        ];
        for kind in kinds {
            let start = Tensor::randn(0f32, 1.0, (7, 5), &Device::Cpu).unwrap();
            let paths: Vec<(Var, Optimizer)> = (0..2)
                .map(|_| {
                    let var = Var::from_tensor(&start.copy().unwrap()).unwrap();
                    let opt = Optimizer::new(kind, vec![("w".into(), var.clone())]);
                    (var, opt)
                })
                .collect();
            let mut paths = paths;
            for step in 0..4 {
                let target = Tensor::randn(0f32, 1.0, (7, 5), &Device::Cpu).unwrap();
                for (path, (var, opt)) in paths.iter_mut().enumerate() {
                    let loss = (var.as_tensor() - &target)
                        .unwrap()
                        .sqr()
                        .unwrap()
                        .sum_all();
                    let grads = loss.unwrap().backward().unwrap();
                    opt.update(&grads, 0.05, path == 0).unwrap();
                }
                let values: Vec<Vec<f32>> = paths
                    .iter()
                    .map(|(var, _)| var.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
                    .collect();
                assert_eq!(values[0], values[1], "{kind:?}, step {step}");
            }
        }
    }

    #[test]
    fn adam_first_step_moves_by_the_learning_rate_and_state_round_trips() {
        let (w, params) = one_param(1.0);
        let mut opt = Optimizer::new(Kind::Adam { weight_decay: 0.0 }, params);
        opt.step(&w.as_tensor().sqr().unwrap().backward().unwrap(), 0.01)
            .unwrap();
        // m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr.
        assert!((value(&w) - 0.99).abs() < 1e-6);
        let state: HashMap<String, Tensor> = opt.state().unwrap().into_iter().collect();
        let (w2, params2) = one_param(0.99);
        let mut resumed = Optimizer::new(Kind::Adam { weight_decay: 0.0 }, params2);
        resumed.load_state(&state, opt.steps).unwrap();
        opt.step(&w.as_tensor().sqr().unwrap().backward().unwrap(), 0.01)
            .unwrap();
        resumed
            .step(&w2.as_tensor().sqr().unwrap().backward().unwrap(), 0.01)
            .unwrap();
        assert_eq!(value(&w), value(&w2));
    }
}
