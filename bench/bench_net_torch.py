"""bench_net_torch.py - the work of bench_net.c in PyTorch: a training step or an inference pass of a
torchvision model (or EfficientNet-Lite) on synthetic data, timed per iteration.

Usage: bench_net_torch.py MODE ARCH SIZE BATCH [--threads N] [--iters K] [--warmup W] [--seed S]
                          [--format channels_last|contiguous] [--compile]
  MODE  train  model.train(); out = model(x); F.cross_entropy(out, y).backward();
               torch.optim.AdamW step (lr 1e-3, wd 1e-2, betas 0.9/0.99, eps 1e-8, PyTorch's default
               implementation); zero_grad(set_to_none=True)
        infer  model.eval() under torch.inference_mode()
        idle   import torch and torchvision, set the threads, run one tiny op: the baseline memory
        save   write the model's fresh weights (torch.manual_seed(--seed)) as a state dict to --out
               (torch.save; bench/peers.py exports it to ONNX with `stylenet export --onnx`)
  ARCH  resnet18 | resnet34 | resnet50 | mobilenet_v2 (torchvision, weights=None, 1000 classes)
        | efficientnet_lite0 | efficientnet_lite1 | efficientnet_lite2 (the PyPI package
        efficientnet-lite-pytorch 0.1.0, the graph stylenet's efficientnet_lite.c builds:
        EfficientNet.from_name('efficientnet-lite<k>', num_classes=1000, image_size=[SIZE, SIZE]), its
        defaults dropout 0.2 (lite2 0.3) and drop-connect 0.2 as stylenet's; needs the test venv's python)
  --threads N  torch.set_num_threads(N) (default 2)
  --format     memory format of the model and input (default channels_last); bench/run.py measures
               both once and uses the faster
  --compile    torch.compile(model) (PyTorch 2.x, default inductor backend): the warm-up steps include
               the compilation (and any recompilation), the timed ones do not; "compile_s" in the output
               is the warm-up time beyond that many steps at the timed median.  The optimiser step stays
               eager.  bench/peers.py runs it in the peers' venv (PyTorch from PyPI)
Input: a fixed batch of torch.randn pixels [BATCH, 3, SIZE, SIZE] and torch.randint labels, from
torch.manual_seed(--seed).  Train: the warm-up steps (at least 3) must give finite, decreasing losses,
as in bench_net.c.
Output: one JSON object on stdout with the keys of bench_net.c's, plus "format", "compiled", "torch",
"cpu_capability" (the vector kernels torch dispatches to, PyTorch 2.x), "onednn" and "blas" (the BLAS libraries loaded: Debian's torch does its GEMM fallbacks through libblas.so.3, which is
the netlib reference BLAS unless an optimised one such as OpenBLAS is installed).
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

N_CLASSES = 1000


def onednn_version():
    m = re.search(r"MKL-DNN v([0-9.]+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def blas_libraries():
    """the BLAS libraries this process has loaded (torch's GEMM fallback: linear layers, _slow_conv2d)"""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path).lower()
                if "blas" in name or "mkl_" in name or "libmkl" in name:
                    libs.add(os.path.realpath(path))
    except OSError:
        return "unknown"
    return ", ".join(sorted(libs)) or "none found"


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def fwd_flops_per_image(model, size, fmt):
    """2 x multiply-adds of every Conv2d and Linear for one image (as stylenet's net_macs)"""
    total = [0]

    def conv_hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total[0] += 2 * out.shape[1] * out.shape[2] * out.shape[3] * k

    def lin_hook(mod, inp, out):
        total[0] += 2 * mod.in_features * mod.out_features

    hooks = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size).contiguous(memory_format=fmt))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total[0]


TORCHVISION = ("resnet18", "resnet34", "resnet50", "mobilenet_v2")
EFFICIENTNET = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def build_model(arch, size):
    """the model of ARCH with fresh weights and 1000 classes"""
    if arch in TORCHVISION:
        return getattr(torchvision.models, arch)(weights=None, num_classes=N_CLASSES)
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        sys.exit(f"bench_net_torch: {arch} needs the PyPI package efficientnet-lite-pytorch (the test venv: "
                 f"make build/venv/ok-effnet, then run with build/venv/bin/python)")
    return EfficientNet.from_name(arch.replace("_", "-"), num_classes=N_CLASSES, image_size=[size, size])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["train", "infer", "idle", "save"])
    ap.add_argument("arch", nargs="?", default="resnet34")
    ap.add_argument("size", nargs="?", type=int, default=224)
    ap.add_argument("batch", nargs="?", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["channels_last", "contiguous"], default="channels_last")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", help="save: the state dict file to write")
    a = ap.parse_args()
    if a.size <= 0 or a.batch <= 0 or a.iters <= 0 or a.warmup < 0 or a.threads <= 0:
        ap.error("SIZE, BATCH, --iters and --threads must be positive")
    torch.set_num_threads(a.threads)
    cpu = getattr(torch.backends, "cpu", None)
    info = {"side": "torch", "torch": torch.__version__, "onednn": onednn_version(), "blas": blas_libraries(),
            "cpu_capability": cpu.get_cpu_capability() if cpu else "unknown"}
    if a.mode == "idle":
        torch.ones(8, 8).matmul(torch.ones(8, 8))
        info.update(mode="idle", threads=torch.get_num_threads(), peak_rss_kb=peak_rss_kb())
        print(json.dumps(info))
        return 0
    if a.arch not in TORCHVISION + EFFICIENTNET:
        ap.error(f"unknown architecture {a.arch}")
    if a.mode == "save":
        if not a.out:
            ap.error("save needs --out FILE")
        torch.manual_seed(a.seed)
        torch.save(build_model(a.arch, a.size).state_dict(), a.out)
        return 0
    fmt = torch.channels_last if a.format == "channels_last" else torch.contiguous_format
    torch.manual_seed(a.seed)
    model = build_model(a.arch, a.size)
    model = model.to(memory_format=fmt)
    x = torch.randn(a.batch, 3, a.size, a.size).contiguous(memory_format=fmt)
    y = torch.randint(0, N_CLASSES, (a.batch,))
    flops = fwd_flops_per_image(model, a.size, fmt)
    if a.compile:
        model = torch.compile(model)
    train = a.mode == "train"
    warmup = max(a.warmup, 3) if train else a.warmup
    print(f"bench_net_torch: {a.mode} {a.arch} {a.size}x{a.size} batch {a.batch}, {a.threads} threads, "
          f"{a.format}{', compiled' if a.compile else ''}, {warmup} warm-up + {a.iters} timed", file=sys.stderr)
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2)

        def step():
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                out = model(x)
            v = out[0, 0].item()
            if not math.isfinite(v):
                sys.exit(f"bench_net_torch: {a.arch} inference gives a non-finite logit")
            return None

    losses, times, warm_s = [], [], 0.0
    for it in range(warmup + a.iters):
        t0 = time.perf_counter()
        loss = step()
        t = time.perf_counter() - t0
        if it < warmup:
            warm_s += t
            if train:
                losses.append(loss)
                print(f"bench_net_torch: warm-up step {it + 1} loss {loss:.4f}", file=sys.stderr)
        else:
            times.append(t)
        if train and it == warmup - 1:
            if not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
                sys.exit(f"bench_net_torch: guard failed: losses {losses} are not finite and decreasing")
    med = statistics.median(times)
    info.update(mode=a.mode, arch=a.arch, size=a.size, batch=a.batch, threads=torch.get_num_threads(),
                format=a.format, compiled=a.compile, warmup=warmup, iters=a.iters, times=[round(t, 6) for t in times],
                median_s=round(med, 6), images_per_s=round(a.batch / med, 3), fwd_flops_per_image=flops)
    if a.compile:
        info["compile_s"] = round(max(0.0, warm_s - warmup * med), 3)
    if train:
        info["losses"] = [round(v, 5) for v in losses]
    info["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
