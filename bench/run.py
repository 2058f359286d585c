#!/usr/bin/python3
"""run.py - stylenet against PyTorch, side by side, on the same work.

Usage (from bench/, after building the library; the Makefiles do this):
  run.py --quick                      reduced run, < 5 minutes on 2 cores: prints the table and `ratio` lines
  run.py --full --results FILE.md     three rounds, more iterations; writes the report (atomically; `make bench`:
                                      bench/RESULTS-debian-torch.md)
Options: --build DIR (../build), --threads N (2), --rounds R, --only NAME[,NAME...], --no-kernels,
         --torch-python PATH (this interpreter), --torch-format auto|channels_last|contiguous.

What runs.  Each figure is one configuration (mode, model, image size, batch) run by
  stylenet  BUILD/bench/bench_net   (bench_net.c: the trainer's step, net_forward/loss/net_backward/AdamW)
  PyTorch   bench_net_torch.py      (torchvision model, or EfficientNet-Lite from the PyPI package
                                     efficientnet-lite-pytorch; F.cross_entropy, backward, torch.optim.AdamW)
with the same threads (2), each run a fresh process that prints one JSON object.  Synthetic data
(random pixels and labels, fixed seed); train runs must show a finite, decreasing loss over their
warm-up steps (the guard) or the benchmark stops.  Per round, every configuration runs on both sides
back to back; the order alternates between rounds (round 1 stylenet then PyTorch, round 2 PyTorch
then stylenet, ...) so that a drift in machine load does not favour one side.  The rounds are the
outer loop, so each figure's samples are spread over the whole run.

Figures.  The timed iterations of all rounds are pooled per side; the figure is their median
(images/s = batch / median seconds; latency = median seconds), the spread shown is the min-max of
the pooled iterations.  Peak memory is getrusage's ru_maxrss of the process (raw: interpreter and
libraries included) after its steps; the median over rounds.  The baseline of an idle process
(library / torch+torchvision imported, threads started) is shown for context.
Train-step GFLOPS = 3 x forward FLOPs per image x images/s (forward F, backward ~2F; FLOPs =
2 x multiply-adds of the convolutions and linear layers), and % of the FMA peak that
bench_kernels measures for the same thread count.  Per-layer-kind GFLOPS come from bench_kernels
and bench_kernels_torch.py: the layers of a kind pooled (total FLOPs / total time).

Ratio lines, one per figure, always "bigger than 1 = stylenet better" EXCEPT latency:
  ratio train_resnet34_128_b32 (images/s ours/torch, target >= 1.2) = X      speed: ours over PyTorch's
  ratio latency_resnet34_224_b1 (latency ours/torch, target <= 0.7) = X      latency: ours over PyTorch's
  ratio memory_resnet34_train_128_b64 (peak RSS torch/ours, target >= 1.67) = X  memory: PyTorch's over ours
  ratio kernel_conv3x3_fwd (GFLOPS ours/torch) = X
The parenthesis names the quotient and the target, if any; the number is last on the line.

PyTorch's memory format: channels_last where that is its faster mode.  --full runs PyTorch in both
formats in round 1 and uses the faster (lower median) for the remaining rounds and the figure; the
choices are saved in BUILD/bench/torch_formats.json, which --quick then uses (without that file
--quick uses channels_last and says so).  The peak-memory run uses the format chosen for the same
model and size at batch 32.

PyTorch's BLAS is recorded too: Debian's torch sends its GEMM fallbacks (linear layers; _slow_conv2d,
which it picks for some convolutions, e.g. 1x1 at batch 1) to libblas.so.3 -- the netlib reference
BLAS unless an optimised one (OpenBLAS) is installed -- while its other convolutions use oneDNN.

The machine: the run measures what other processes took of the CPU meanwhile (/proc/stat busy time
minus this run's own) and, above 5%, flags the run as made on a shared machine (the report says so at
the top).  A quick run that takes over 5 minutes says so too.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Config:
    def __init__(self, name, mode, arch, size, batch, figure, target=None):
        self.name, self.mode, self.arch, self.size, self.batch = name, mode, arch, size, batch
        self.figure = figure  # "speed" (images/s), "latency" (seconds), "memory" (peak RSS)
        self.target = target  # (op, value) on the printed ratio, or None

    @property
    def key(self):  # what decides PyTorch's memory format
        b = 32 if self.figure == "memory" else self.batch
        return f"{self.mode} {self.arch} {self.size} {b}"


MEM_TARGET = 0.6  # our peak <= 0.6 x PyTorch's, i.e. torch/ours >= 1/0.6
CONFIGS = [
    Config("train_resnet34_128_b32", "train", "resnet34", 128, 32, "speed", (">=", 1.2)),
    Config("train_mobilenet_v2_128_b32", "train", "mobilenet_v2", 128, 32, "speed", (">=", 2.0)),
    Config("train_resnet18_128_b32", "train", "resnet18", 128, 32, "speed"),
    Config("train_resnet50_128_b32", "train", "resnet50", 128, 32, "speed"),
    Config("train_resnet34_224_b32", "train", "resnet34", 224, 32, "speed"),
    Config("latency_resnet34_224_b1", "infer", "resnet34", 224, 1, "latency", ("<=", 0.7)),
    Config("latency_mobilenet_v2_224_b1", "infer", "mobilenet_v2", 224, 1, "latency", ("<=", 0.7)),
    Config("infer_resnet34_224_b32", "infer", "resnet34", 224, 32, "speed"),
    Config("infer_mobilenet_v2_224_b32", "infer", "mobilenet_v2", 224, 32, "speed"),
    Config("train_efficientnet_lite0_128_b32", "train", "efficientnet_lite0", 128, 32, "speed", (">=", 2.0)),
    Config("latency_efficientnet_lite0_224_b1", "infer", "efficientnet_lite0", 224, 1, "latency", ("<=", 0.7)),
    Config("infer_efficientnet_lite0_224_b32", "infer", "efficientnet_lite0", 224, 32, "speed"),
    Config("memory_resnet34_train_128_b64", "train", "resnet34", 128, 64, "memory", (">=", 1 / MEM_TARGET)),
]

# (warm-up, timed iterations) per configuration; train runs take at least 3 warm-up steps (the guard)
PLANS = {
    "quick": {
        "rounds": 1, "kernel_reps": 3,
        "train_resnet34_128_b32": (3, 5), "train_mobilenet_v2_128_b32": (3, 5),
        "train_resnet18_128_b32": (3, 3), "train_resnet50_128_b32": (3, 2), "train_resnet34_224_b32": (3, 2),
        "latency_resnet34_224_b1": (3, 20), "latency_mobilenet_v2_224_b1": (3, 30),
        "infer_resnet34_224_b32": (1, 3), "infer_mobilenet_v2_224_b32": (1, 3),
        "train_efficientnet_lite0_128_b32": (3, 3), "latency_efficientnet_lite0_224_b1": (3, 20),
        "infer_efficientnet_lite0_224_b32": (1, 3),
        "memory_resnet34_train_128_b64": (3, 1),
    },
    "full": {
        "rounds": 3, "kernel_reps": 7,
        "train_resnet34_128_b32": (3, 8), "train_mobilenet_v2_128_b32": (3, 8),
        "train_resnet18_128_b32": (3, 6), "train_resnet50_128_b32": (3, 4), "train_resnet34_224_b32": (3, 3),
        "latency_resnet34_224_b1": (5, 40), "latency_mobilenet_v2_224_b1": (5, 60),
        "infer_resnet34_224_b32": (2, 5), "infer_mobilenet_v2_224_b32": (2, 5),
        "train_efficientnet_lite0_128_b32": (3, 8), "latency_efficientnet_lite0_224_b1": (5, 60),
        "infer_efficientnet_lite0_224_b32": (2, 5),
        "memory_resnet34_train_128_b64": (3, 2),
    },
}
FORMATS = ("channels_last", "contiguous")
T0 = time.monotonic()


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.0f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the machine


def cpu_busy_s():
    """busy CPU seconds of the whole machine so far (/proc/stat), or None"""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def machine_info(threads):
    model, cores = platform.processor() or "unknown", None
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        m = re.search(r"^model name\s*:\s*(.+)$", txt, re.M)
        model = m.group(1).strip() if m else model
        m = re.search(r"^cpu cores\s*:\s*(\d+)$", txt, re.M)
        cores = int(m.group(1)) if m else None
        flags = re.search(r"^flags\s*:\s*(.+)$", txt, re.M)
        avx512 = bool(flags and "avx512f" in flags.group(1).split())
        avx2 = bool(flags and "avx2" in flags.group(1).split())
    except OSError:
        avx512 = avx2 = False
    logical = os.cpu_count()
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = 0
    return {"cpu": model, "logical_cpus": logical, "cores_per_socket": cores, "avx512": avx512, "avx2": avx2,
            "memory_gb": round(mem_gb, 1), "threads": threads, "kernel": platform.release()}


def other_cpu_share(busy0, own0, wall):
    """the share of the machine's CPU time that other processes took since cpu_busy_s() was busy0 and
    own_cpu_s() own0, wall seconds ago; None if unknown"""
    busy1, own1 = cpu_busy_s(), own_cpu_s()
    if busy0 is None or busy1 is None or wall <= 0:
        return None
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall * (os.cpu_count() or 1))


def select(items, only, ap, name):
    """the items named in the comma-separated list only (all if None); an unknown name is a usage error"""
    if not only:
        return items
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in {name(c) for c in items}]
    if unknown:
        ap.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(name(c) for c in items)}")
    return [c for c in items if name(c) in names]


def dnnl_version():
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libdnnl2"], capture_output=True, text=True)
        return p.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return (rev + (" + uncommitted changes" if dirty else "")) if rev else "unknown"
    except OSError:
        return "unknown"


# ------------------------------------------------------------------ running one side


def run_json(cmd, what, timeout=1800):
    """runs cmd, returns the JSON objects it printed, one per line"""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: no result after {timeout} s: {' '.join(cmd)}")
    except OSError as e:
        raise BenchError(f"{what}: cannot run {cmd[0]}: {e}")
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-12:])
        raise BenchError(f"{what} failed (exit status {p.returncode}): {' '.join(cmd)}\n{tail}")
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BenchError(f"{what}: bad JSON line {line[:80]!r}: {e}")
    if not out:
        raise BenchError(f"{what}: printed no result: {' '.join(cmd)}")
    return out


def run_side(a, side, cfg, warmup, iters, fmt=None):
    args = [cfg.mode, cfg.arch, str(cfg.size), str(cfg.batch), "--threads", str(a.threads),
            "--iters", str(iters), "--warmup", str(warmup)]
    if side == "stylenet":
        cmd = [a.bench_net] + args
    else:
        cmd = [a.torch_python, os.path.join(HERE, "bench_net_torch.py")] + args + ["--format", fmt]
    r = run_json(cmd, f"{cfg.name} ({side})")[-1]
    if len(r.get("times", [])) != iters or r.get("median_s", 0) <= 0:
        raise BenchError(f"{cfg.name} ({side}): expected {iters} timed iterations, got {r.get('times')}")
    return r


def run_idle(a, side):
    if side == "stylenet":
        cmd = [a.bench_net, "idle", "resnet34", "1", "1", "--threads", str(a.threads)]
    else:
        cmd = [a.torch_python, os.path.join(HERE, "bench_net_torch.py"), "idle", "--threads", str(a.threads)]
    return run_json(cmd, f"idle baseline ({side})")[-1]


def run_kernels(a, reps):
    ours = run_json([a.bench_kernels, "--threads", str(a.threads), "--reps", str(reps), "--json"],
                    "bench_kernels")
    theirs = run_json([a.torch_python, os.path.join(HERE, "bench_kernels_torch.py"), "--threads", str(a.threads),
                       "--reps", str(reps), "--json"], "bench_kernels_torch.py")
    peak = ours[0]["peak_gflops"]
    return peak, ours[1:], theirs[1:]


# ------------------------------------------------------------------ figures


def median(v):
    return statistics.median(v) if v else float("nan")


def figure_of(cfg, runs):
    """(value, lo, hi) of a configuration's figure from one side's runs"""
    if cfg.figure == "memory":
        rss = [r["peak_rss_kb"] / 1024 for r in runs]
        return median(rss), min(rss), max(rss)
    times = [t for r in runs for t in r["times"]]
    med, lo, hi = median(times), min(times), max(times)
    if cfg.figure == "latency":
        return med, lo, hi
    return cfg.batch / med, cfg.batch / hi, cfg.batch / lo


def ratio_of(cfg, ours, theirs):
    if cfg.figure == "latency":
        return ours / theirs  # ours over PyTorch's: smaller is better
    if cfg.figure == "memory":
        return theirs / ours  # PyTorch's over ours: bigger is better
    return ours / theirs  # speed: bigger is better


def describe_ratio(cfg):
    q = {"speed": "images/s ours/torch", "latency": "latency ours/torch", "memory": "peak RSS torch/ours"}[cfg.figure]
    if cfg.target:
        q += f", target {cfg.target[0]} {cfg.target[1]:.3g}"
    return q


def target_met(cfg, r):
    if not cfg.target:
        return None
    op, v = cfg.target
    return r >= v - 1e-12 if op == ">=" else r <= v + 1e-12


def fmt_value(cfg, v):
    if cfg.figure == "speed":
        return f"{v:.1f} img/s" if v < 1000 else f"{v:.0f} img/s"
    if cfg.figure == "latency":
        return f"{v * 1e3:.1f} ms"
    return f"{v:.0f} MB"


def fmt_spread(cfg, lo, hi):
    if cfg.figure == "speed":
        return f"{lo:.1f}-{hi:.1f}"
    if cfg.figure == "latency":
        return f"{lo * 1e3:.1f}-{hi * 1e3:.1f}"
    return f"{lo:.0f}-{hi:.0f}"


def kernel_kinds(rows):
    """per kind and op: pooled GFLOPS (total FLOPs / total time)"""
    kinds = {}
    for r in rows:
        k = kinds.setdefault(r["kind"], {"fwd": [0.0, 0.0], "bwd_data": [0.0, 0.0], "bwd_wt": [0.0, 0.0]})
        for op in k:
            k[op][0] += r["gflop"]
            k[op][1] += r["gflop"] / r[op] if r[op] > 0 else float("inf")
    return {kind: {op: (f / t if t > 0 else 0.0) for op, (f, t) in ops.items()} for kind, ops in kinds.items()}


# ------------------------------------------------------------------ the run


def load_formats(path, torch_version, cpu, threads):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None, "no probe yet"
    if d.get("torch") != torch_version or d.get("cpu") != cpu or d.get("threads") != threads:
        return None, f"{path} is for another torch, CPU or thread count"
    return d, f"from the probe of {d.get('date', '?')} ({os.path.relpath(path, ROOT)})"


def save_json_atomic(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_text_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="stylenet vs PyTorch, side by side (see the top of this file)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--quick", action="store_true", help="reduced run (< 5 minutes on 2 cores)")
    g.add_argument("--full", action="store_true", help="more rounds and iterations")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (../build)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, help="override the plan's rounds")
    ap.add_argument("--only", help="comma-separated configuration names (default: all)")
    ap.add_argument("--no-kernels", action="store_true", help="skip the per-layer-kind GFLOPS")
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--torch-format", choices=["auto"] + list(FORMATS), default="auto")
    ap.add_argument("--results", help="write the report (markdown) here")
    a = ap.parse_args()
    plan = PLANS["quick" if a.quick else "full"]
    rounds = a.rounds or plan["rounds"]
    if a.threads <= 0 or rounds <= 0:
        ap.error("--threads and --rounds must be positive")
    a.bench_net = os.path.join(os.path.abspath(a.build), "bench", "bench_net")
    a.bench_kernels = os.path.join(os.path.abspath(a.build), "bench", "bench_kernels")
    for b in (a.bench_net, a.bench_kernels):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} is not built (make -C bench BUILD=... bins)")
    configs = select(CONFIGS, a.only, ap, lambda c: c.name)

    mach = machine_info(a.threads)
    start_date = datetime.datetime.now().astimezone()
    load_start = os.getloadavg()[0]
    busy0, own0, wall0 = cpu_busy_s(), own_cpu_s(), time.monotonic()
    log(f"{'quick' if a.quick else 'full'} run: {len(configs)} configurations x {rounds} round(s), "
        f"{a.threads} threads, on {mach['cpu']} ({mach['logical_cpus']} logical CPUs); load average {load_start:.2f}")

    # --- baselines, versions
    idle = {"stylenet": run_idle(a, "stylenet"), "torch": run_idle(a, "torch")}
    torch_version, onednn_torch = idle["torch"]["torch"], idle["torch"]["onednn"]

    # --- PyTorch's memory format
    fmt_path = os.path.join(os.path.abspath(a.build), "bench", "torch_formats.json")
    formats, fmt_note, probe = {}, "", {}
    if a.torch_format != "auto":
        formats = {c.key: a.torch_format for c in configs}
        fmt_note = f"{a.torch_format} (--torch-format)"
    elif a.quick:
        saved, why = load_formats(fmt_path, torch_version, mach["cpu"], a.threads)
        saved_f = (saved or {}).get("formats", {})
        formats = {c.key: saved_f.get(c.key, "channels_last") for c in configs}
        missing = [c.key for c in configs if c.key not in saved_f]
        fmt_note = why if not missing else (f"channels_last assumed for {len(missing)} configuration(s) ({why}); "
                                            f"`make bench` measures both formats")
    else:
        fmt_note = "measured: round 1 runs PyTorch in both formats, the faster is used"

    # --- kernels
    kern = None
    if not a.no_kernels:
        log(f"per-layer GFLOPS: bench_kernels and bench_kernels_torch.py ({plan['kernel_reps']} runs each)")
        kern = run_kernels(a, plan["kernel_reps"])
        log(f"FMA peak measured: {kern[0]:.1f} GFLOPS ({a.threads} threads)")
    peak = kern[0] if kern else None

    # --- rounds
    runs = {c.name: {"stylenet": [], "torch": []} for c in configs}
    for rnd in range(rounds):
        for c in configs:
            warmup, iters = plan[c.name]
            order = ("stylenet", "torch") if rnd % 2 == 0 else ("torch", "stylenet")
            for side in order:
                if side == "torch" and a.torch_format == "auto" and not a.quick and c.key not in formats:
                    if c.figure == "memory":  # use the format of the same model and size at batch 32
                        formats[c.key] = "channels_last"
                    else:  # probe: both formats, keep the faster one's run
                        res = {}
                        for f in FORMATS:
                            res[f] = run_side(a, "torch", c, warmup, iters, f)
                            log(f"round {rnd + 1} {c.name} torch {f}: median {res[f]['median_s'] * 1e3:.1f} ms")
                        best = min(FORMATS, key=lambda f: res[f]["median_s"])
                        formats[c.key] = best
                        probe[c.key] = {f: res[f]["median_s"] for f in FORMATS}
                        runs[c.name]["torch"].append(res[best])
                        continue
                r = run_side(a, side, c, warmup, iters, formats.get(c.key, "channels_last"))
                runs[c.name][side].append(r)
                extra = f" ({r['format']})" if side == "torch" else ""
                log(f"round {rnd + 1} {c.name} {side}{extra}: median {r['median_s'] * 1e3:.1f} ms, "
                    f"{r['images_per_s']:.1f} img/s, peak RSS {r['peak_rss_kb'] / 1024:.0f} MB")
    if probe and a.torch_format == "auto" and not a.quick:
        saved, _ = load_formats(fmt_path, torch_version, mach["cpu"], a.threads)
        d = saved or {"torch": torch_version, "cpu": mach["cpu"], "threads": a.threads, "formats": {}, "probe": {}}
        d["formats"].update({k: formats[k] for k in probe})
        d.setdefault("probe", {}).update(probe)
        d["date"] = start_date.strftime("%Y-%m-%d %H:%M")
        save_json_atomic(fmt_path, d)

    # --- machine sharing
    wall = time.monotonic() - wall0
    other = other_cpu_share(busy0, own0, wall)
    shared = other is not None and other > 0.05

    # --- figures
    rows = []
    for c in configs:
        o = figure_of(c, runs[c.name]["stylenet"])
        t = figure_of(c, runs[c.name]["torch"])
        r = ratio_of(c, o[0], t[0])
        rows.append((c, o, t, r))
    report = make_report(a, plan, rounds, configs, runs, rows, idle, kern, peak, formats, fmt_note, probe, mach,
                         start_date, torch_version, onednn_torch, load_start, other, shared, wall)
    print(report["text"])
    for line in report["ratios"]:
        print(line)
    if a.results:
        write_text_atomic(a.results, report["markdown"])
        log(f"wrote {a.results}")
    log(f"done in {wall:.0f} s")
    if a.quick and wall > 300:
        log(f"WARNING: the quick run took {wall / 60:.1f} minutes, over its 5-minute budget"
            + (" (the machine was shared)" if shared else ""))
    return 0


def make_report(a, plan, rounds, configs, runs, rows, idle, kern, peak, formats, fmt_note, probe, mach, start_date,
                torch_version, onednn_torch, load_start, other, shared, wall):
    ratios, text, md = [], [], []
    sharing = (f"other processes used {100 * other:.0f}% of the machine's CPU time during the run"
               if other is not None else "CPU use of other processes unknown")
    # main table
    hdr = ["figure", "stylenet", "spread", "PyTorch", "spread", "ratio", "target", "met"]
    table = []
    for c, o, t, r in rows:
        met = target_met(c, r)
        tgt = f"{c.target[0]} {c.target[1]:.3g}" if c.target else ""
        torch_fmt = runs[c.name]["torch"][0].get("format", "")
        table.append([c.name, fmt_value(c, o[0]), fmt_spread(c, o[1], o[2]), fmt_value(c, t[0]) + f" ({torch_fmt})",
                      fmt_spread(c, t[1], t[2]), f"{r:.2f}", tgt, "" if met is None else ("yes" if met else "NO")])
        ratios.append(f"ratio {c.name} ({describe_ratio(c)}) = {r:.3f}")
    # train-step GFLOPS
    gf_hdr = ["train step", "fwd GFLOP/img", "train GFLOP/img", "stylenet GFLOPS", "% peak", "PyTorch GFLOPS",
              "% peak"]
    gf = []
    flop_mismatch = []
    for c, o, t, r in rows:
        ours0, theirs0 = runs[c.name]["stylenet"][0], runs[c.name]["torch"][0]
        f_ours, f_torch = ours0.get("fwd_flops_per_image", 0), theirs0.get("fwd_flops_per_image", 0)
        if f_ours and f_torch and abs(f_ours - f_torch) > 1e-6 * f_ours:
            flop_mismatch.append(f"{c.name}: stylenet {f_ours / 1e9:.4f} vs PyTorch {f_torch / 1e9:.4f} GFLOP/img")
        if c.mode != "train" or c.figure != "speed":
            continue
        tr = 3 * f_ours
        go, gt = tr * o[0] / 1e9, tr * t[0] / 1e9
        pk = (lambda g: f"{100 * g / peak:.0f}%") if peak else (lambda g: "")
        gf.append([c.name, f"{f_ours / 1e9:.3f}", f"{tr / 1e9:.3f}", f"{go:.1f}", pk(go), f"{gt:.1f}", pk(gt)])
    # kernels
    kk_hdr = ["layer kind", "op", "stylenet GFLOPS", "% peak", "PyTorch GFLOPS", "% peak", "ratio"]
    kk, kl = [], []
    if kern:
        _, ko, kt = kern
        ours_k, torch_k = kernel_kinds(ko), kernel_kinds(kt)
        for kind in ours_k:
            for op in ("fwd", "bwd_data", "bwd_wt"):
                g1, g2 = ours_k[kind][op], torch_k.get(kind, {}).get(op, 0)
                rr = g1 / g2 if g2 > 0 else float("nan")
                kk.append([kind, op, f"{g1:.1f}", f"{100 * g1 / peak:.0f}%", f"{g2:.1f}", f"{100 * g2 / peak:.0f}%",
                           f"{rr:.2f}"])
                ratios.append(f"ratio kernel_{kind.replace(' ', '_')}_{op} (GFLOPS ours/torch) = {rr:.3f}")
        tmap = {r["layer"]: r for r in kt}
        for r in ko:
            t = tmap.get(r["layer"], {})
            kl.append([r["layer"], r.get("algo", ""), f"{r['gflop']:.3f}"] +
                      [f"{r[op]:.1f} / {t.get(op, 0):.1f}" for op in ("fwd", "bwd_data", "bwd_wt")])
    peak_note = ""
    if kern and peak:
        # effective GFLOPS of Winograd layers (fewer multiplies) may exceed the peak legitimately
        top = max(max(r[op] for op in ("fwd", "bwd_data", "bwd_wt")) for r in kern[1] + kern[2]
                  if r.get("algo") != "winograd")
        if top > peak:
            peak_note = (f"a convolution ran at {top:.0f} GFLOPS, above the measured FMA peak {peak:.0f}: the peak "
                         f"measurement was disturbed (a busy machine), so the % of peak figures are too high")
    # guard
    guards = []
    for c in configs:
        if c.mode == "train":
            lo, lt = runs[c.name]["stylenet"][0].get("losses", []), runs[c.name]["torch"][0].get("losses", [])
            guards.append(f"{c.name}: stylenet {' '.join(f'{v:.3f}' for v in lo)}; "
                          f"PyTorch {' '.join(f'{v:.3f}' for v in lt)}")
    mem_rows = [["idle process (library / torch+torchvision loaded, threads started)",
                 f"{idle['stylenet']['peak_rss_kb'] / 1024:.0f} MB", f"{idle['torch']['peak_rss_kb'] / 1024:.0f} MB"]]
    for c in configs:
        ro, rt = runs[c.name]["stylenet"], runs[c.name]["torch"]
        mem_rows.append([c.name, f"{median([r['peak_rss_kb'] for r in ro]) / 1024:.0f} MB",
                         f"{median([r['peak_rss_kb'] for r in rt]) / 1024:.0f} MB"])

    def plain(h, rs):
        w = [max(len(str(x)) for x in col) for col in zip(h, *rs)]
        return "\n".join("  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip() for r in [h] + rs)

    def mdt(h, rs):
        return "\n".join(["| " + " | ".join(h) + " |", "|" + "---|" * len(h)] +
                         ["| " + " | ".join(str(x) for x in r) + " |" for r in rs])

    kind = "quick" if a.quick else "full"
    pk_txt = f"{peak:.1f} GFLOPS" if peak else "not measured (--no-kernels)"
    text.append("")
    text.append(f"stylenet vs PyTorch {torch_version} ({kind} run, {rounds} round(s), {a.threads} threads): "
                f"{mach['cpu']}, FMA peak {pk_txt}")
    text.append(("SHARED MACHINE: " if shared else "") + sharing + "; timings " +
                ("are noisy" if shared else "should be representative"))
    text.append(f"PyTorch memory format: {fmt_note}; BLAS {idle['torch'].get('blas')}; run took {wall:.0f} s")
    text.append("")
    text.append(plain(hdr, table))
    if gf:
        text.append("")
        text.append(plain(gf_hdr, gf))
    if kk:
        text.append("")
        text.append(plain(kk_hdr, kk))
    if peak_note:
        text.append("WARNING: " + peak_note)
    text.append("")
    text.append("peak RSS (MB), raw:")
    text.append(plain(["process", "stylenet", "PyTorch"], mem_rows))
    text.append("")
    text.append("guard (training loss over the warm-up steps on the fixed batch, first run):")
    text.extend("  " + g for g in guards)
    for m in flop_mismatch:
        text.append("WARNING: the two sides count different FLOPs (different graphs?): " + m)
    text.append("")

    cmd = "make bench" if not a.quick else "make bench-quick"
    md.append("# stylenet vs PyTorch: benchmark results")
    md.append("")
    if shared:
        md.append(f"**The machine was shared during this run: {sharing}. These timings are noisy and not final; "
                  f"rerun `{cmd}` on a quiet machine.**")
        md.append("")
    md.append(f"Written by `{' '.join(['bench/run.py'] + sys.argv[1:])}` (`{cmd}` from the repository root runs "
              f"it); {rounds} round(s), {wall / 60:.1f} minutes.")
    md.append("")
    md.append(f"- Date: {start_date.strftime('%Y-%m-%d %H:%M %Z')}")
    md.append(f"- Machine: {mach['cpu']}, {mach['logical_cpus']} logical CPUs"
              f"{', AVX-512' if mach['avx512'] else ''}, {mach['memory_gb']} GiB RAM, Linux {mach['kernel']}; "
              f"load average {load_start:.2f} at the start; {sharing}")
    md.append(f"- Threads: {a.threads} on both sides (stylenet: omp_set_num_threads; PyTorch: torch.set_num_threads)")
    md.append(f"- FMA peak measured (bench_kernels: FMA chains on the build's widest vectors, {a.threads} threads): "
              f"{pk_txt}")
    md.append(f"- stylenet: {git_revision()}, gcc -O3 -march=native, oneDNN {dnnl_version()} (Debian libdnnl2, "
              f"convolution primitives and sgemm)")
    md.append(f"- PyTorch: {torch_version} (Debian python3-torch), oneDNN {onednn_torch}, BLAS {idle['torch'].get('blas')}"
              f"{' (netlib reference BLAS: slow GEMM fallbacks, e.g. linear layers and _slow_conv2d)' if 'blas/libblas' in str(idle['torch'].get('blas')) else ''}"
              f"; memory format: {fmt_note}")
    if probe:
        md.append("- PyTorch format probe (round 1, median seconds per iteration): " + "; ".join(
            f"{k}: " + ", ".join(f"{f} {v:.4f}" for f, v in p.items()) + f" -> {formats[k]}"
            for k, p in probe.items()))
    md.append("")
    md.append("## Figures")
    md.append("")
    md.append("Median of the timed iterations of all rounds pooled (each round a fresh process per side, the "
              "order alternating between rounds); spread = min-max of those iterations. Memory: median over rounds "
              "of ru_maxrss, raw (interpreter and libraries included), spread min-max over rounds.")
    md.append("Ratios: speed = stylenet images/s over PyTorch's (> 1: stylenet faster); latency = stylenet's "
              "latency over PyTorch's (< 1: stylenet faster); memory = PyTorch's peak RSS over stylenet's "
              "(> 1: stylenet smaller; the target, ours <= 0.6x PyTorch's, is a ratio >= 1.67).")
    md.append("")
    md.append(mdt(hdr, table))
    md.append("")
    md.append("Iterations per run (warm-up + timed): " + ", ".join(
        f"{c.name} {plan[c.name][0]}+{plan[c.name][1]}" for c in configs) + ".")
    if gf:
        md.append("")
        md.append("## Train-step GFLOPS")
        md.append("")
        md.append("FLOPs = 2 x multiply-adds of the convolutions and linear layers (forward F per image, the same "
                  "count on both sides); a train step is counted as 3F (backward ~2F); % of the measured FMA peak. "
                  "stylenet runs large 3x3 stride-1 layers on Winograd F(4x4,3x3), which needs fewer "
                  "multiplies than the count assumes, so its effective figure can pass 100%.")
        md.append("")
        md.append(mdt(gf_hdr, gf))
    if kk:
        md.append("")
        md.append("## Convolution GFLOPS per layer kind")
        md.append("")
        md.append(f"bench_kernels vs bench_kernels_torch.py (PyTorch channels_last), batch 32, median of "
                  f"{plan['kernel_reps']} runs per layer; a kind's figure pools its layers (total FLOPs / total "
                  f"time).  GFLOPS count the direct convolution's multiply-adds: a layer stylenet runs on "
                  f"Winograd F(4x4,3x3) (algo column below) does fewer, so its effective GFLOPS can exceed the "
                  f"FMA peak.")
        md.append("")
        md.append(mdt(kk_hdr, kk))
        md.append("")
        if peak_note:
            md.append(f"**Note: {peak_note}.**")
            md.append("")
        md.append("Per layer (GFLOPS stylenet / PyTorch):")
        md.append("")
        md.append(mdt(["layer", "stylenet algo", "GFLOP", "fwd", "bwd-data", "bwd-wt"], kl))
    md.append("")
    md.append("## Peak resident memory (raw ru_maxrss)")
    md.append("")
    md.append(mdt(["process", "stylenet", "PyTorch"], mem_rows))
    md.append("")
    md.append("## Guard")
    md.append("")
    md.append("Training loss over the warm-up steps on the fixed synthetic batch (first run of each side); a run "
              "whose loss is not finite and decreasing stops the benchmark.")
    md.append("")
    md.extend("- " + g for g in guards)
    for m in flop_mismatch:
        md.append(f"- WARNING: different FLOP counts: {m}")
    md.append("")
    md.append("## Ratio lines")
    md.append("")
    md.append("```")
    md.extend(ratios)
    md.append("```")
    md.append("")
    md.append("## Per-round medians (seconds per iteration; memory in MB)")
    md.append("")
    for c in configs:
        def per_round(side):
            rs = runs[c.name][side]
            if c.figure == "memory":
                return ", ".join(f"{r['peak_rss_kb'] / 1024:.0f}" for r in rs)
            return ", ".join(f"{r['median_s']:.4f}" for r in rs)
        md.append(f"- {c.name}: stylenet {per_round('stylenet')}; PyTorch {per_round('torch')}")
    md.append("")
    return {"text": "\n".join(text), "ratios": ratios, "markdown": "\n".join(md)}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
