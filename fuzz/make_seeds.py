"""Writes the small seed corpora of the fuzz targets from the test fixtures and the shipped
runs (Python standard library only), byte for byte as committed; .ci/run writes them into a
temporary folder and compares. Run from the repository root:

    python3 fuzz/make_seeds.py [OUT]    # OUT defaults to fuzz/seeds

The `checkpoint` seeds are the exception: tests/fixtures/make_fixtures.py writes those with
PyTorch (legacy files, whose storage keys change with every run)."""

import gzip
import json
import os
import pickletools
import shutil
import struct
import sys
import zipfile
import zlib

FIX = "tests/fixtures"
RUNS = "assets/training"
OUT = sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds"


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def shrink_pickle(data, keep):
    """The pickle with its one large byte string cut to `keep` bytes (lengths rewritten)."""
    for op, arg, pos in pickletools.genops(data):
        if isinstance(arg, (bytes, str)) and len(arg) > 4096:
            # Text is stored as UTF-8: cut whole characters.
            raw = arg if isinstance(arg, bytes) else arg.encode("utf-8")
            cut = arg[:keep] if isinstance(arg, bytes) else arg[:keep].encode("utf-8")
            head = len(op.code.encode("latin1"))
            width = {"T": 4, "B": 4, "X": 4, "\x8e": 8, "\x8d": 8}[op.code]
            start = pos + head + width
            fmt = "<I" if width == 4 else "<Q"
            return (data[:pos + head] + struct.pack(fmt, len(cut)) + cut
                    + data[start + len(raw):])
    return data


def png(width, height, colour):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    channels = 3 if colour else 1
    rows = b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(width * channels))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                           2 if colour else 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def main():
    # pickle: the object pickles of real checkpoints and a shrunken CIFAR python batch.
    for name in ["r32_c10.pth", "tiny_imagenet_io.pth"]:
        with zipfile.ZipFile(os.path.join(FIX, name)) as z:
            pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
            write("pickle", name.replace(".pth", ".pkl"), z.read(pkl))
    with open(os.path.join(FIX, "cifar-10-batches-py", "test_batch"), "rb") as f:
        cifar10_py = shrink_pickle(f.read(), 2 * 3072)
    with open(os.path.join(FIX, "cifar-100-python", "test"), "rb") as f:
        cifar100_py = shrink_pickle(f.read(), 2 * 3072)
    write("pickle", "cifar10_py", cifar10_py)
    write("pickle", "cifar100_py", cifar100_py)
    # cifar: two records of each binary version, and the python batches.
    with open(os.path.join(FIX, "cifar-10-batches-bin", "test_batch.bin"), "rb") as f:
        write("cifar", "cifar10_bin", f.read(2 * 3073))
    with open(os.path.join(FIX, "cifar-100-binary", "test.bin"), "rb") as f:
        write("cifar", "cifar100_bin", f.read(2 * 3074))
    write("cifar", "cifar10_py", cifar10_py)
    write("cifar", "cifar100_py", cifar100_py)
    # idx: a split byte, then two images and their labels, raw and gzipped.
    with open(os.path.join(FIX, "fmnist-idx", "t10k-images-idx3-ubyte"), "rb") as f:
        images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 28, 28) + f.read()[16:16 + 2 * 784]
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([3, 7])
    split = lambda a, b: bytes([round(255 * len(a) / (len(a) + len(b)))])
    write("idx", "raw", split(images, labels) + images + labels)
    gi, gl = gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)
    write("idx", "gzip", split(gi, gl) + gi + gl)
    # image: small PNGs, colour and grey.
    write("image", "rgb.png", png(12, 9, True))
    write("image", "grey.png", png(7, 5, False))
    # metrics: three shipped runs' metrics.csv (a base run with empty policy columns, a
    # finetuning run, a latency run with the cost column).
    for name, run in [("base", "fmnist-base"), ("g5", "fmnist-finetune-g5"),
                      ("latency", "fmnist-latency-g12")]:
        with open(os.path.join(RUNS, run, "metrics.csv"), "rb") as f:
            write("metrics", name + ".csv", f.read())
    # cost_table: a measured table (a shipped latency run's) and a small made-up one.
    os.makedirs(os.path.join(OUT, "cost_table"), exist_ok=True)
    shutil.copyfile(os.path.join(RUNS, "fmnist-latency", "cost.json"),
                    os.path.join(OUT, "cost_table", "measured.json"))
    entry = lambda us, flops: {"us": us, "flops": flops}
    hand = {"version": 1, "config": "R32_C10", "device": "phone", "kernels": "npu", "threads": 4,
            "batch": 8, "policy": entry(100, 1e6), "stem": entry(5, 1), "head": entry(1, 1),
            "blocks": [entry(us, 1e6) for us in range(1, 16)]}
    write("cost_table", "hand.json", json.dumps(hand).encode())
    # provenance: a shard's metadata, one `key=value` per line (the target adds the prefix).
    part = {"model": "0123456789abcdef", "model_name": "m", "config": "R32_FMNIST",
            "data": "IDX:test:1000:0011", "data_path": "/d", "threshold": "0.5",
            "images": "1000", "complete": "false", "shard": "2/3"}
    write("provenance", "part.txt", "".join(f"{k}={v}\n" for k, v in part.items()).encode())
    # parquet: the one-column file the hostile corpus forges from (valid as written here), and
    # the same with a Snappy page declaring 2 GiB.
    sys.path.insert(0, FIX)
    sys.dont_write_bytecode = True
    from make_hostile import parquet_forged
    os.makedirs(os.path.join(OUT, "parquet"), exist_ok=True)
    parquet_forged(os.path.join(OUT, "parquet", "valid.parquet"))
    parquet_forged(os.path.join(OUT, "parquet", "page_2gib.parquet"), page_size=(1 << 31) - 1)
    # run_folder: [u16 length] config.json [u16 length] metrics.csv, then state.safetensors
    # (none here: a run whose first epoch has not finished).
    for run in ["fmnist-base", "fmnist-finetune-g5"]:
        parts = []
        for name in ["config.json", "metrics.csv"]:
            with open(os.path.join(RUNS, run, name), "rb") as f:
                body = f.read()
            parts.append(struct.pack("<H", len(body)) + body)
        write("run_folder", run, b"".join(parts))
    # records: `policy blocks label` per line; one width, then mixed widths.
    write("records", "three", b"0101 2 0\n0111 3 1\n1111 4 2\n")
    write("records", "widths", b"01 1 0\n011 2 0\n")


if __name__ == "__main__":
    main()
