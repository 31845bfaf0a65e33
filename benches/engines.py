"""The other engines, timed on the same work as benches/kernels.rs and benches/executors.rs:
the reference's flat ResNets (random weights) in PyTorch eager (as is, and with BatchNorm fused
into the convolutions), in ONNX Runtime (all graph optimisations), and one PyTorch training
step. Same thread count as the Rust side, which passes its own.

    tests/fixtures/.venv/bin/python benches/engines.py THREADS

Prints one `key value` line per measurement: `<engine> <model> b<batch>` in ms per image,
`torch <model> train<batch>` (base), `curriculum<batch>` and `finetune<batch>` (the policy
stages' steps, masked base forwards as the reference) in ms per step. Median of 7 runs after
a warm-up.
"""

import os
import statistics
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_fixtures import BasicBlock, FlatResNet32, Policy  # noqa: E402

REPEAT = 7


def median_ms(run):
    run()
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def models():
    """name → (network, input shape without the batch)."""
    return {
        "R110_C10": (FlatResNet32(BasicBlock, [18, 18, 18], 10), (3, 32, 32)),
        "R32_FMNIST": (FlatResNet32(BasicBlock, [5, 5, 5], 10, in_channels=1, final_map=7), (1, 28, 28)),
    }


class Full(nn.Module):
    """forward = every block kept (what ONNX export and fusion trace)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_full(x)


def onnx_session(module, shape, threads, folder):
    import onnxruntime as ort

    path = os.path.join(folder, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, torch.randn(1, *shape), path, input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print("torch", torch.__version__, "threads", torch.get_num_threads())
    folder = tempfile.mkdtemp()
    for name, (net, shape) in models().items():
        full = Full(net).eval()
        fused = fuse(full)
        session = onnx_session(full, shape, threads, folder)
        for batch in (1, 64):
            x = torch.randn(batch, *shape)
            with torch.no_grad():
                print(f"torch {name} b{batch}", median_ms(lambda: full(x)) / batch)
                print(f"torch-fused {name} b{batch}", median_ms(lambda: fused(x)) / batch)
            feed = {"x": x.numpy()}
            print(f"onnxruntime {name} b{batch}", median_ms(lambda: session.run(None, feed)) / batch)

    net, shape = models()["R32_FMNIST"]
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(128, *shape), torch.randint(0, 10, (128,))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(net.forward_full(x), y).backward()
        optimizer.step()

    print("torch R32_FMNIST train128", median_ms(step))

    # The policy stages' steps as the reference runs them (masked base forwards), R32_FMNIST,
    # half the blocks kept at random: curriculum (batch 256, base frozen) and finetune (256).
    base, shape = models()["R32_FMNIST"]
    agent = Policy(FlatResNet32(BasicBlock, [1, 1, 1], 10, in_channels=1, final_map=7), 15)
    x, y = torch.randn(256, *shape), torch.randint(0, 10, (256,))
    adam = torch.optim.Adam(list(agent.parameters()) + list(base.parameters()), lr=1e-4)

    def policy_step(finetune):
        adam.zero_grad()
        agent.train()
        probs, _ = agent(x)
        pb = probs * 0.8 + 0.2 * (1 - probs)
        policy = torch.bernoulli(pb.detach())
        greedy = (probs.detach() >= 0.5).float()
        with torch.no_grad():
            base.eval()
            base.forward(x, greedy)
            if not finetune:
                base.forward(x, policy)
        base.train(finetune)
        logits = base.forward(x, policy) if finetune else None
        advantage = torch.randn(256, 1)
        loss = (-torch.distributions.Bernoulli(pb).log_prob(policy) * advantage).sum()
        if finetune:
            loss = loss + F.cross_entropy(logits, y)
        loss.backward()
        adam.step()

    print("torch R32_FMNIST curriculum256", median_ms(lambda: policy_step(False)))
    print("torch R32_FMNIST finetune256", median_ms(lambda: policy_step(True)))


if __name__ == "__main__":
    main()
