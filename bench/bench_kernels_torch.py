"""PyTorch's GFLOPS for the layers of bench_kernels.c (same shapes, batch 32, channels_last,
2 threads unless OMP_NUM_THREADS says otherwise), forward / backward-data / backward-weights, median of 7 runs after a warm-up.
Usage: python bench/bench_kernels_torch.py [batch]"""
import os
import statistics
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
L = [
    ("r34 stem 7x7 s2 3->64 @128", 128, 128, 3, 64, 7, 2, 3, 1),
    ("r34 3x3 64 @32", 32, 32, 64, 64, 3, 1, 1, 1),
    ("r34 3x3 128 @16", 16, 16, 128, 128, 3, 1, 1, 1),
    ("r34 3x3 256 @8", 8, 8, 256, 256, 3, 1, 1, 1),
    ("r34 3x3 512 @4", 4, 4, 512, 512, 3, 1, 1, 1),
    ("r34 3x3 s2 64->128 @32", 32, 32, 64, 128, 3, 2, 1, 1),
    ("r34 1x1 s2 128->256 @16", 16, 16, 128, 256, 1, 2, 0, 1),
    ("mv2 1x1 96->576 @8", 8, 8, 96, 576, 1, 1, 0, 1),
    ("mv2 dw3x3 32 @64", 64, 64, 32, 32, 3, 1, 1, 32),
    ("mv2 dw3x3 s2 96 @64", 64, 64, 96, 96, 3, 2, 1, 96),
    ("mv2 dw3x3 144 @32", 32, 32, 144, 144, 3, 1, 1, 144),
    ("mv2 dw3x3 192 @16", 16, 16, 192, 192, 3, 1, 1, 192),
    ("mv2 dw3x3 384 @8", 8, 8, 384, 384, 3, 1, 1, 384),
    ("mv2 dw3x3 s2 576 @8", 8, 8, 576, 576, 3, 2, 1, 576),
    ("mv2 dw3x3 960 @4", 4, 4, 960, 960, 3, 1, 1, 960),
]


def med(f):
    f()
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {n}, channels_last")
print(f"{'layer':28s} {'fwd':>8s} {'bwd-data':>9s} {'bwd-wt':>8s}   (GFLOPS)")
with torch.no_grad():
    for (name, h, w, cin, cout, k, s, p, g) in L:
        x = torch.randn(n, cin, h, w).to(memory_format=torch.channels_last)
        wt = torch.randn(cout, cin // g, k, k).to(memory_format=torch.channels_last)
        y = torch.nn.functional.conv2d(x, wt, None, s, p, 1, g)
        dy = torch.randn_like(y).contiguous(memory_format=torch.channels_last)
        oh, ow = y.shape[2], y.shape[3]
        flops = 2.0 * n * oh * ow * cout * (cin // g) * k * k
        args = (dy, x, wt, [0], [s, s], [p, p], [1, 1], False, [0, 0], g)
        tf = med(lambda: torch.nn.functional.conv2d(x, wt, None, s, p, 1, g))
        td = med(lambda: torch.ops.aten.convolution_backward(*args, [True, False, False]))
        tw = med(lambda: torch.ops.aten.convolution_backward(*args, [False, True, False]))
        print(f"{name:28s} {flops / tf / 1e9:8.1f} {flops / td / 1e9:9.1f} {flops / tw / 1e9:8.1f}", flush=True)
