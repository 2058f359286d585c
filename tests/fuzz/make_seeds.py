"""Writes the seed corpora tests/fuzz/corpus/{safetensors,tflite}/seed_* (small valid files).

Run with the venv python from the repo root: build/venv/bin/python tests/fuzz/make_seeds.py
Crashers and interesting inputs found by fuzzing are added next to them by hand (crash_*, min_*).
"""
import os
import sys

import numpy as np
from safetensors.numpy import save

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
from fixtures_io import tiny_tflite  # noqa: E402


def shared_tables(k):
    """a FlatBuffer whose k subgraphs share one table whose tensors vector holds k references to
    one tensor table (k*k tensors described by ~8k bytes); see test_tflite.c test_shared_tables"""
    import struct
    v, vt2 = 28, 32 + 4 * k
    sg, tv = vt2 + 8, vt2 + 16
    vt3 = tv + 4 + 4 * k
    x = vt3 + 4
    b = bytearray(x + 4)
    struct.pack_into("<I4s", b, 0, 20, b"TFL3")
    struct.pack_into("<5H", b, 8, 10, 8, 0, 0, 4)
    struct.pack_into("<iI", b, 20, 20 - 8, v - 24)
    struct.pack_into("<I", b, v, k)
    for i in range(k):
        struct.pack_into("<I", b, v + 4 + 4 * i, sg - (v + 4 + 4 * i))
    struct.pack_into("<3H", b, vt2, 6, 8, 4)
    struct.pack_into("<iI", b, sg, sg - vt2, tv - (sg + 4))
    struct.pack_into("<I", b, tv, k)
    for i in range(k):
        struct.pack_into("<I", b, tv + 4 + 4 * i, x - (tv + 4 + 4 * i))
    struct.pack_into("<2Hi", b, vt3, 4, 4, x - vt3)
    return bytes(b)


def main():
    st = os.path.join(here, "corpus", "safetensors")
    tf = os.path.join(here, "corpus", "tflite")
    os.makedirs(st, exist_ok=True)
    os.makedirs(tf, exist_ok=True)
    seeds = {
        "seed_f32": ({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, None),
        "seed_dtypes": ({"a": np.ones(2, np.float64), "b": np.ones(2, np.float16), "c": np.ones(1, np.int64),
                         "d": np.ones(3, np.int32), "e": np.ones(2, np.int16), "f": np.ones(3, np.int8),
                         "g": np.ones(3, np.uint8), "h": np.ones(2, bool)}, None),
        "seed_meta": ({"x": np.zeros((1, 2), np.float32)}, {"arch": "resnet34", "q": 'a"\\\n\u00e9'}),
        "seed_empty": ({"e": np.zeros((0, 2), np.float32), "s": np.array(1.5, np.float32)}, None),
        "seed_none": ({}, {"k": "v"}),
    }
    for name, (t, meta) in seeds.items():
        open(os.path.join(st, name), "wb").write(save(t, metadata=meta))
    open(os.path.join(tf, "seed_tiny"), "wb").write(tiny_tflite())
    open(os.path.join(tf, "seed_shared8"), "wb").write(shared_tables(8))
    open(os.path.join(tf, "seed_shared100"), "wb").write(shared_tables(100))


if __name__ == "__main__":
    main()
