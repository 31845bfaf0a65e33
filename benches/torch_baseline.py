"""PyTorch eager CPU baseline for benches/executors.rs: the full R110_C10 flat ResNet (the
reference's architecture, random weights, eval mode) at batch 1 and 64, median of 7 runs after
a warm-up, with the thread count given (the Rust side passes its own).

    tests/fixtures/.venv/bin/python benches/torch_baseline.py THREADS
"""

import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_fixtures import BasicBlock, FlatResNet32  # noqa: E402


def ms_per_image(net, batch):
    x = torch.randn(batch, 3, 32, 32)
    with torch.no_grad():
        net.forward_full(x)
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            net.forward_full(x)
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples) / batch


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    net = FlatResNet32(BasicBlock, [18, 18, 18], 10).eval()
    print("torch", torch.__version__, "threads", torch.get_num_threads())
    print("batch1_ms_per_img", ms_per_image(net, 1))
    print("batch64_ms_per_img", ms_per_image(net, 64))


if __name__ == "__main__":
    main()
