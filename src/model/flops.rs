//! Analytic FLOPs by the reference's rule: a convolution costs 2·Cin·Cout·kh·kw·Hout·Wout, a
//! linear layer 2·in·out; BatchNorm, ReLU, pooling and the option-A shortcut cost nothing
//! (docs/method.md, "FLOPs").

use crate::config::{BlockKind, Config, Family, ResNetSpec};

/// Output size of a convolution or pooling window along one axis (floor mode, as PyTorch).
fn out_size(size: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (size + 2 * padding - kernel) / stride + 1
}

fn conv(cin: usize, cout: usize, kernel: usize, hout: usize, wout: usize) -> u64 {
    2 * (cin * cout * kernel * kernel * hout * wout) as u64
}

fn linear(inputs: usize, outputs: usize) -> u64 {
    2 * (inputs * outputs) as u64
}

/// FLOPs of one network, part by part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFlops {
    pub stem: u64,
    /// Per flat block: its residual branch only.
    pub blocks: Vec<u64>,
    /// Per segment: the shortcut, which runs whether or not the segment's first block does.
    pub shortcuts: Vec<u64>,
    /// The final linear layer(s).
    pub head: u64,
}

impl NetworkFlops {
    /// Counts `spec` on an input of `height`x`width`; `head_outputs` are the widths of the
    /// linear layers on the pooled features (`fc`, or the policy's `logit` and `vnet`).
    pub fn count(spec: &ResNetSpec, height: usize, width: usize, head_outputs: &[usize]) -> Self {
        let stem_width = spec.stem_width();
        let (stem, mut h, mut w) = match spec.family {
            Family::Cifar => {
                let (h, w) = (out_size(height, 3, 1, 1), out_size(width, 3, 1, 1));
                (conv(spec.in_channels, stem_width, 3, h, w), h, w)
            }
            Family::ImageNet => {
                let (h, w) = (out_size(height, 7, 2, 3), out_size(width, 7, 2, 3));
                let flops = conv(spec.in_channels, stem_width, 7, h, w);
                (flops, out_size(h, 3, 2, 1), out_size(w, 3, 2, 1))
            }
        };
        let mut inplanes = stem_width;
        let mut blocks = Vec::with_capacity(spec.num_blocks());
        let mut shortcuts = Vec::with_capacity(spec.layers.len());
        for (segment, (&n, &planes)) in spec.layers.iter().zip(&spec.widths).enumerate() {
            let stride = spec.stride(segment);
            let out = planes * spec.block.expansion();
            let (ho, wo) = (out_size(h, 3, stride, 1), out_size(w, 3, stride, 1));
            let needs_projection =
                spec.family == Family::ImageNet && (stride != 1 || inplanes != out);
            shortcuts.push(if needs_projection {
                conv(inplanes, out, 1, ho, wo)
            } else {
                0
            });
            for b in 0..n {
                let cin = if b == 0 { inplanes } else { out };
                // Only the first block of a segment works at the input resolution.
                let (hi, wi) = if b == 0 { (h, w) } else { (ho, wo) };
                blocks.push(match spec.block {
                    BlockKind::Basic => {
                        conv(cin, planes, 3, ho, wo) + conv(planes, planes, 3, ho, wo)
                    }
                    BlockKind::Bottleneck => {
                        conv(cin, planes, 1, hi, wi)
                            + conv(planes, planes, 3, ho, wo)
                            + conv(planes, out, 1, ho, wo)
                    }
                });
            }
            inplanes = out;
            (h, w) = (ho, wo);
        }
        let head = head_outputs.iter().map(|&o| linear(inplanes, o)).sum();
        Self {
            stem,
            blocks,
            shortcuts,
            head,
        }
    }

    /// Every block kept.
    pub fn full(&self) -> u64 {
        self.stem + self.shortcuts.iter().sum::<u64>() + self.blocks.iter().sum::<u64>() + self.head
    }

    /// Only the blocks with `keep[k]` run; stem, shortcuts and head always do.
    pub fn with_policy(&self, keep: &[bool]) -> u64 {
        let kept: u64 = self
            .blocks
            .iter()
            .zip(keep)
            .filter(|(_, &k)| k)
            .map(|(f, _)| f)
            .sum();
        self.stem + self.shortcuts.iter().sum::<u64>() + kept + self.head
    }
}

/// FLOPs of a BlockDrop configuration: its policy network and its base network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDropFlops {
    /// The whole policy network, including `vnet`, which the reference's forward runs (and its
    /// hook-based counter therefore counts) even though nothing uses its output at test time.
    pub policy: u64,
    pub base: NetworkFlops,
}

impl BlockDropFlops {
    pub fn for_config(config: &Config) -> Self {
        let (_, h, w) = config.input;
        let policy = NetworkFlops::count(
            &config.policy,
            config.policy_input_side(h).2,
            config.policy_input_side(w).2,
            &[config.num_blocks(), 1],
        );
        let base = NetworkFlops::count(&config.base, h, w, &[config.classes()]);
        Self {
            policy: policy.full(),
            base,
        }
    }

    /// The FLOPs of `model`: a base network alone has no policy network to count.
    pub fn of(model: &crate::model::BlockDrop) -> Self {
        let mut flops = Self::for_config(&model.config);
        if !model.has_policy() {
            flops.policy = 0;
        }
        flops
    }

    /// FLOPs for one image under `keep`: policy + executed base network (the reference's count).
    pub fn per_image(&self, keep: &[bool]) -> u64 {
        self.policy + self.base.with_policy(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> NetworkFlops {
        let c = Config::by_name(name).unwrap();
        NetworkFlops::count(&c.base, c.input.1, c.input.2, &[c.classes()])
    }

    #[test]
    fn full_resnet110_at_32x32_is_about_5_1e8() {
        // 2 × 252,887,040 conv multiply-adds + fc 2 × 64 × 10: the paper's ≈ 5.1E+08
        // (PyTorch's hook count in tests/fixtures/flops_reference.json agrees).
        assert_eq!(base("R110_C10").full(), 505_774_080 + 1_280);
    }

    #[test]
    fn full_resnet101_at_224x224_is_the_known_7_8_gmacs() {
        // 2 × 7,799,357,440 conv multiply-adds + fc 2 × 2048 × 1000.
        assert_eq!(base("R101_ImgNet").full(), 15_598_714_880 + 4_096_000);
    }

    #[test]
    fn policy_flops_are_policy_stem_shortcuts_kept_blocks_and_head() {
        let c = Config::by_name("R101_ImgNet").unwrap();
        let f = BlockDropFlops::for_config(&c);
        let keep: Vec<bool> = (0..33).map(|k| k % 3 != 1).collect();
        let kept: u64 = (0..33).filter(|&k| keep[k]).map(|k| f.base.blocks[k]).sum();
        let expected =
            f.policy + f.base.stem + f.base.shortcuts.iter().sum::<u64>() + kept + f.base.head;
        assert_eq!(f.per_image(&keep), expected);
        assert_eq!(f.per_image(&[true; 33]), f.policy + f.base.full());
        assert!(f.base.shortcuts.iter().all(|&s| s > 0));
    }
}
