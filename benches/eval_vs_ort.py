"""Whole-process `blockdrop eval --threshold 0` (every block kept) against ONNX Runtime's
in-process loop, on the same checkpoint and images: a random reference-layout R110_C10
checkpoint (policy and base network) and 512 random images in CIFAR-10's binary format.

    tests/fixtures/.venv/bin/python benches/eval_vs_ort.py [threads]   # needs a release build

blockdrop is timed as the user runs it (process start, checkpoint import, decoding, the
policy network and the base network, printing), with `--no-baselines`: the static
baselines re-run the network, and ONNX Runtime's loop has nothing like them. ONNX Runtime
is timed as a Python loop over the same images already in memory (normalising, the policy
network and the base network per batch), so the comparison favours ONNX Runtime. Each
time is the median of three runs; the two engines alternate so that drift on a shared
machine hits both alike.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from make_fixtures import BasicBlock, FlatResNet32, Policy  # noqa: E402

sys.path.insert(0, HERE)
from engines import Full, onnx_session  # noqa: E402

IMAGES = 512
ROUNDS = 3


class Probs(nn.Module):
    def __init__(self, agent):
        super().__init__()
        self.agent = agent

    def forward(self, x):
        return self.agent(x)[0]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.manual_seed(0)
    rnet = FlatResNet32(BasicBlock, [18, 18, 18], 10).eval()
    agent = Policy(FlatResNet32(BasicBlock, [1, 1, 1], 10), 54).eval()
    blockdrop = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "blockdrop")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "r110_c10.pth")
        torch.save({"agent": agent.state_dict(), "resnet": rnet.state_dict(), "epoch": 0}, ckpt)
        data = os.path.join(tmp, "cifar-10-batches-bin")
        os.makedirs(data)
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, IMAGES, dtype=np.uint8)
        pixels = rng.integers(0, 256, (IMAGES, 3 * 32 * 32), dtype=np.uint8)
        with open(os.path.join(data, "test_batch.bin"), "wb") as f:
            f.write(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
        images = pixels.reshape(IMAGES, 3, 32, 32).astype(np.float32) / 255.0
        os.makedirs(os.path.join(tmp, "base"))
        os.makedirs(os.path.join(tmp, "policy"))
        base = onnx_session(Full(rnet), (3, 32, 32), threads, os.path.join(tmp, "base"))
        policy = onnx_session(Probs(agent), (3, 32, 32), threads, os.path.join(tmp, "policy"))
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        for batch in (1, 64):
            ours, theirs = [], []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                subprocess.run([blockdrop, "eval", "--model", ckpt, "--data", data, "--threshold", "0",
                                "--limit", str(IMAGES), "--batch", str(batch), "--no-baselines"],
                               check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                for i in range(0, IMAGES, batch):
                    x = np.ascontiguousarray(images[i:i + batch])
                    policy.run(None, {"x": x})
                    base.run(None, {"x": x})
                theirs.append(time.perf_counter() - start)
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"batch {batch:>2}: blockdrop eval {o:6.2f} s (whole process) | ONNX Runtime loop {t:6.2f} s"
                  f" | ratio {o / t:.2f}")


if __name__ == "__main__":
    main()
