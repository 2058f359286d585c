"""PyTorch's GFLOPS for the layers of bench_kernels.c (same shapes, batch 32, channels_last,
2 threads unless --threads or OMP_NUM_THREADS says otherwise), forward / backward-data / backward-weights,
median of R runs (7) after a warm-up.
Usage: python bench/bench_kernels_torch.py [batch] [--threads N] [--reps R] [--only TEXT] [--json]
  --only  only the layers whose name contains TEXT (e.g. "dw5x5")
  --json  one JSON object per line, as bench_kernels --json: first {"torch", "threads", "batch"}, then per layer
          {"layer", "kind", "gflop", "fwd", "bwd_data", "bwd_wt"} (GFLOPS)"""
import argparse
import json
import os
import statistics
import time

import torch

ap = argparse.ArgumentParser(description="PyTorch's GFLOPS for the layers of bench_kernels.c")
ap.add_argument("batch", nargs="?", type=int, default=32)
ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
ap.add_argument("--reps", type=int, default=7)
ap.add_argument("--only", default="")
ap.add_argument("--json", action="store_true")
cli = ap.parse_args()
if cli.batch <= 0 or cli.threads <= 0 or cli.reps <= 0:
    ap.error("batch, --threads and --reps must be positive")
torch.set_num_threads(cli.threads)
n = cli.batch
# (name, h, w, cin, cout, k, stride, pad, groups); the kind is derived from the name as in bench_kernels.c;
# pad -1: TF 'SAME' (asymmetric on stride 2), applied to x beforehand (F.pad, outside the timing, so the
# figures are the convolution's alone, as on stylenet's side)
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
    ("el0 dw3x3 s2 96 @112", 112, 112, 96, 96, 3, 2, -1, 96),
    ("el0 dw5x5 s2 144 @56", 56, 56, 144, 144, 5, 2, -1, 144),
    ("el0 dw5x5 240 @28", 28, 28, 240, 240, 5, 1, -1, 240),
    ("el0 dw5x5 480 @14", 14, 14, 480, 480, 5, 1, -1, 480),
    ("el0 dw5x5 672 @14", 14, 14, 672, 672, 5, 1, -1, 672),
    ("el0 dw5x5 s2 672 @14", 14, 14, 672, 672, 5, 2, -1, 672),
    ("el0 dw5x5 1152 @7", 7, 7, 1152, 1152, 5, 1, -1, 1152),
]


def kind(name):
    if "stem" in name:
        return "conv7x7 stem"
    if "dw3x3" in name:
        return "depthwise3x3"
    if "dw5x5" in name:
        return "depthwise5x5"
    if "1x1" in name:
        return "conv1x1"
    return "conv3x3 s2" if "3x3 s2" in name else "conv3x3"


def same_pad(size, k, s):
    """TF 'SAME' padding of one axis: (low, high), the extra pixel on the high side"""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def med(f):
    f()
    ts = []
    for _ in range(cli.reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


if cli.json:
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": n, "reps": cli.reps}))
else:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {n}, channels_last")
    print(f"{'layer':28s} {'fwd':>8s} {'bwd-data':>9s} {'bwd-wt':>8s}   (GFLOPS)")
with torch.no_grad():
    for (name, h, w, cin, cout, k, s, p, g) in L:
        if cli.only not in name:
            continue
        x = torch.randn(n, cin, h, w)
        if p < 0:
            (pt, pb), (pl, pr) = same_pad(h, k, s), same_pad(w, k, s)
            x, p = torch.nn.functional.pad(x, (pl, pr, pt, pb)), 0
        x = x.contiguous(memory_format=torch.channels_last)
        wt = torch.randn(cout, cin // g, k, k).to(memory_format=torch.channels_last)
        y = torch.nn.functional.conv2d(x, wt, None, s, p, 1, g)
        dy = torch.randn_like(y).contiguous(memory_format=torch.channels_last)
        oh, ow = y.shape[2], y.shape[3]
        flops = 2.0 * n * oh * ow * cout * (cin // g) * k * k
        conv_args = (dy, x, wt, [0], [s, s], [p, p], [1, 1], False, [0, 0], g)
        tf = med(lambda: torch.nn.functional.conv2d(x, wt, None, s, p, 1, g))
        td = med(lambda: torch.ops.aten.convolution_backward(*conv_args, [True, False, False]))
        tw = med(lambda: torch.ops.aten.convolution_backward(*conv_args, [False, True, False]))
        if cli.json:
            print(json.dumps({"layer": name, "kind": kind(name), "gflop": round(flops / 1e9, 6),
                              "fwd": round(flops / tf / 1e9, 3), "bwd_data": round(flops / td / 1e9, 3),
                              "bwd_wt": round(flops / tw / 1e9, 3)}), flush=True)
        else:
            print(f"{name:28s} {flops / tf / 1e9:8.1f} {flops / td / 1e9:9.1f} {flops / tw / 1e9:8.1f}", flush=True)
