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

    /// One update with learning rate `lr`; parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
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
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            if let Some(t) = &self.first[i] {
                out.insert(format!("first.{name}"), t.clone());
            }
            if let Some(t) = &self.second[i] {
                out.insert(format!("second.{name}"), t.clone());
            }
        }
        out
    }

    /// Restores [`Optimizer::state`]; a parameter missing from `state` starts fresh.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (slot, key) in [
                (&mut self.first[i], format!("first.{name}")),
                (&mut self.second[i], format!("second.{name}")),
            ] {
                *slot = match state.get(&key) {
                    Some(t) if t.shape() == var.shape() => Some(t.to_device(var.device())?),
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

    #[test]
    fn adam_first_step_moves_by_the_learning_rate_and_state_round_trips() {
        let (w, params) = one_param(1.0);
        let mut opt = Optimizer::new(Kind::Adam { weight_decay: 0.0 }, params);
        opt.step(&w.as_tensor().sqr().unwrap().backward().unwrap(), 0.01)
            .unwrap();
        // m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr.
        assert!((value(&w) - 0.99).abs() < 1e-6);
        let state: HashMap<String, Tensor> = opt.state().into_iter().collect();
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
