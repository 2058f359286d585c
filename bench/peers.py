#!/usr/bin/python3
"""peers.py - stylenet against the CPU tools a user installs from PyPI today, on the same work.

Usage (from bench/; `make -C bench peers` builds, installs the peers' venv and runs it):
  peers.py --peers-python VENV/bin/python [--quick] [--rounds R] [--only ROW,...] [--threads N]
           [--build DIR] [--json OUT.json] [--results RESULTS.md]
  peers.py --render RUN.json --results RESULTS.md     rewrite RESULTS.md from a run's JSON (peers_report.py)
  --baseline DIR   also run DIR/bench/bench_net (a build of another revision of stylenet, e.g. a worktree of
                   the last release built with `make all && make -C bench bins`) on every row, in the same
                   rounds: the report shows its figure and the speed-up of this build over it (no ratio
                   against peers); --baseline-label names it (default: DIR's git revision)

The peers (bench/requirements-peers.txt, in build/venv-peers):
  torch           PyTorch 2.x eager: bench_net_torch.py, channels_last (train and inference rows)
  torch.compile   the same with --compile (train rows; the compilation is in the warm-up steps, and its
                  time is reported apart)
  onnxruntime     ONNX Runtime, CPU provider (inference rows)       bench_net_runtime.py on the ONNX file
  openvino        OpenVINO, CPU plugin, f32 (inference rows)        that `stylenet export --onnx` writes
  litert          LiteRT on the shared uint8 TFLite MobileNetV2 at batch 1 (its graph's final Reshape
                  fixes the batch to 1): informational only (integer work, not the fp32 work of the
                  row; shown beside it, never in a ratio)
The ONNX files: `stylenet export --onnx BUILD/bench/peers/ARCH.onnx` of the model each row measures --
for the torchvision and EfficientNet-Lite rows a fresh state dict that the peers' PyTorch writes
(bench_net_torch.py save), for mobilenet_v2_tf the shared TFLite file (dequantised to fp32, TF's
asymmetric SAME padding kept).  The exporter writes the graph stylenet itself runs (Conv,
BatchNormalization, Relu/Clip, Add, pooling, Gemm), so every runtime gets the same graph; each folds
and fuses it by its own optimiser.  (torch.onnx.export would give the same operators for the
torchvision graphs, but it needs onnxscript in PyTorch 2.x and has no graph for the TF model.)

Timing, as bench/run.py: each run is a fresh process printing one JSON object (warm-up untimed, then
timed iterations); per round every tool runs each row, the order rotating from round to round; the
figure is the median of all rounds' timed iterations pooled (run.py's figure_of).  Within a round the
inference rows run first, then the train rows.  A row's ratio is
against its fastest peer, always "> 1: stylenet faster": images/s ours over the peer's, latency the
peer's over ours.  GFLOPS use stylenet's FLOP count of the graph (2 x multiply-adds of convolutions and
linear layers; a train step counts 3x the forward); the % of peak is against the FMA peak that
bench_kernels measures at the start of the run on the same threads (12 independent FMA chains per thread).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import peers_report
import run as R

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRAIN_PEERS = ("torch", "torch.compile")
INFER_PEERS = ("torch", "onnxruntime", "openvino")
TF_PEERS = ("onnxruntime", "openvino")  # no PyTorch graph of TF's MobileNetV2


def _rows():
    rows = []
    for arch in ("resnet34", "mobilenet_v2", "efficientnet_lite0"):
        rows.append((R.Config(f"train_{arch}_128_b32", "train", arch, 128, 32, "speed", (">=", 1.5)), TRAIN_PEERS, ()))
    for arch in ("resnet34", "mobilenet_v2", "mobilenet_v2_tf", "efficientnet_lite0"):
        peers, info = (TF_PEERS, ("litert",)) if arch.endswith("_tf") else (INFER_PEERS, ())
        rows.append((R.Config(f"latency_{arch}_224_b1", "infer", arch, 224, 1, "latency", (">=", 1.2)), peers, info))
        rows.append((R.Config(f"infer_{arch}_224_b32", "infer", arch, 224, 32, "speed", (">=", 1.2)), peers, ()))
    return rows


ROWS = _rows()
# (warm-up, timed iterations) by mode and batch; torch.compile's warm-up holds the compilation
PLANS = {
    "quick": {"rounds": 2, "train": (3, 1), "infer1": (3, 10), "infer32": (1, 1)},
    "full": {"rounds": 3, "train": (3, 6), "infer1": (5, 40), "infer32": (2, 5)},
}


def plan_of(plan, cfg):
    return plan["train"] if cfg.mode == "train" else plan["infer1" if cfg.batch == 1 else "infer32"]


def tflite_path():
    shared = os.environ.get("STYLENET_SHARED", os.path.join(ROOT, "..", "shared"))
    return os.path.join(shared, "weights", "mobilenet_v2_1.0_224_quant.tflite")


def export_onnx(a, arch):
    """BUILD/bench/peers/ARCH.onnx: stylenet's export of the row's model (module docstring)"""
    d = os.path.join(a.build, "bench", "peers")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, f"{arch}.onnx")
    if os.path.isfile(out) and os.path.getmtime(out) > os.path.getmtime(a.stylenet):
        return out  # exported by this build of stylenet already (fresh weights: timing only)
    if arch == "mobilenet_v2_tf":
        src = tflite_path()
        if not os.path.isfile(src):
            raise R.BenchError(f"{src}: the shared TFLite MobileNetV2 is missing (STYLENET_SHARED)")
        labels = os.path.join(os.path.dirname(src), "imagenet_labels.txt")
        cmd = [a.stylenet, "export", "--onnx", out, "--labels", labels, src]
    else:
        src = os.path.join(d, f"{arch}.pth")
        run_plain([a.peers_python, os.path.join(HERE, "bench_net_torch.py"), "save", arch, "224", "1", "--out", src],
                  f"state dict of {arch}")
        cmd = [a.stylenet, "export", "--onnx", out, "--size", "224", src]
    run_plain(cmd, f"stylenet export of {arch}")
    return out


def run_plain(cmd, what):
    """runs cmd for its effect; a failure stops the benchmark with its stderr"""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if p.returncode != 0:
        raise R.BenchError(f"{what} failed (exit status {p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()[-800:]}")


def run_tool(a, tool, cfg, warmup, iters, onnx):
    args = [cfg.mode, cfg.arch, str(cfg.size), str(cfg.batch), "--threads", str(a.threads), "--iters", str(iters),
            "--warmup", str(warmup)]
    if tool == "stylenet":
        cmd = [a.bench_net] + args
    elif tool == "before":
        cmd = [a.baseline_bench_net] + args
    elif tool in ("torch", "torch.compile"):
        cmd = [a.peers_python, os.path.join(HERE, "bench_net_torch.py")] + args + ["--format", "channels_last"]
        cmd += ["--compile"] if tool == "torch.compile" else []
    else:
        model = tflite_path() if tool == "litert" else onnx[cfg.arch]
        cmd = [a.peers_python, os.path.join(HERE, "bench_net_runtime.py")] + args + ["--runtime", tool, "--model",
                                                                                    model]
    r = R.run_json(cmd, f"{cfg.name} ({tool})")[-1]
    if len(r.get("times", [])) != iters or r.get("median_s", 0) <= 0:
        raise R.BenchError(f"{cfg.name} ({tool}): expected {iters} timed iterations, got {r.get('times')}")
    return r


def row_result(cfg, peers, info, runs):
    """one row of the run's JSON: every tool's figure, the fastest peer, the ratio against it"""
    flops = runs["stylenet"][0].get("fwd_flops_per_image", 0) * (3 if cfg.mode == "train" else 1)
    tools = {}
    for t, rs in runs.items():
        v, lo, hi = R.figure_of(cfg, rs)
        ips = cfg.batch / v if cfg.figure == "latency" else v
        tools[t] = {"value": v, "lo": lo, "hi": hi, "gflops": flops * ips / 1e9 if flops else None,
                    "version": rs[0].get("version") or rs[0].get("torch") or "",
                    "round_medians_s": [r["median_s"] for r in rs]}
        if "compile_s" in rs[0]:
            tools[t]["compile_s"] = [r["compile_s"] for r in rs]
    better = min if cfg.figure == "latency" else max
    fastest = better(peers, key=lambda t: tools[t]["value"])
    ours, theirs = tools["stylenet"]["value"], tools[fastest]["value"]
    ratio = theirs / ours if cfg.figure == "latency" else ours / theirs
    return {"name": cfg.name, "mode": cfg.mode, "arch": cfg.arch, "size": cfg.size, "batch": cfg.batch,
            "figure": cfg.figure, "target": list(cfg.target) if cfg.target else None, "peers": list(peers),
            "informational": list(info), "tools": tools, "fastest_peer": fastest, "ratio": ratio,
            "gflop_per_image": flops / 1e9 if flops else None}


def baseline_revision(d):
    """the git revision of the checkout holding build directory d (its parent), or d's name"""
    p = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(d)), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else os.path.basename(os.path.abspath(d))


def main():
    ap = argparse.ArgumentParser(description="stylenet against today's PyPI peers (see the top of this file)")
    ap.add_argument("--render", metavar="RUN.json", help="only rewrite --results from a run's JSON")
    ap.add_argument("--peers-python", help="the peers' venv's python (build/venv-peers/bin/python)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and iterations")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--only", help="comma-separated row names (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", help="write the run's JSON here")
    ap.add_argument("--results", help="write the markdown report here")
    ap.add_argument("--baseline", metavar="DIR", help="a build directory of another stylenet revision, run beside")
    ap.add_argument("--baseline-label", help="its name in the report (default: its checkout's git revision)")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            run = json.load(f)
        if a.results:
            R.write_text_atomic(a.results, peers_report.render(run))
        else:
            print(peers_report.render(run))
        return 0
    if not a.peers_python:
        ap.error("--peers-python is needed (make -C bench peers sets it)")
    plan = PLANS["quick" if a.quick else "full"]
    rounds = a.rounds or plan["rounds"]
    if a.threads <= 0 or rounds <= 0:
        ap.error("--threads and --rounds must be positive")
    a.build = os.path.abspath(a.build)
    a.bench_net, a.stylenet = os.path.join(a.build, "bench", "bench_net"), os.path.join(a.build, "stylenet")
    for b in (a.bench_net, a.stylenet):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} is not built (make all; make -C bench bins)")
    rows = R.select(ROWS, a.only, ap, lambda r: r[0].name)
    ours = ("stylenet",)
    if a.baseline:
        a.baseline_bench_net = os.path.join(os.path.abspath(a.baseline), "bench", "bench_net")
        if not os.access(a.baseline_bench_net, os.X_OK):
            ap.error(f"{a.baseline_bench_net} is not built (make all; make -C bench bins in that checkout)")
        ours += ("before",)

    mach = R.machine_info(a.threads)
    start = datetime.datetime.now().astimezone()
    load0 = os.getloadavg()[0]
    busy0, own0, wall0 = R.cpu_busy_s(), R.own_cpu_s(), time.monotonic()
    versions = R.run_json([a.peers_python, os.path.join(HERE, "bench_net_runtime.py"), "check"],
                          "the peers' venv check")[-1]
    R.log(f"peers: {len(rows)} rows x {rounds} round(s), {a.threads} threads, {mach['cpu']}; load average "
          f"{load0:.2f}; torch {versions['torch']} ({versions['cpu_capability']}), onnxruntime "
          f"{versions['onnxruntime']}, openvino {versions['openvino']}")
    peak = R.run_json([os.path.join(a.build, "bench", "bench_kernels"), "--threads", str(a.threads), "--only",
                       "(the FMA peak alone)", "--json"], "the FMA peak (bench_kernels)")[0]["peak_gflops"]
    R.log(f"FMA peak measured: {peak:.1f} GFLOPS ({a.threads} threads)")
    onnx = {}
    for arch in sorted({c.arch for c, p, _ in rows if c.mode == "infer"}):
        onnx[arch] = export_onnx(a, arch)
        R.log(f"exported {os.path.relpath(onnx[arch], ROOT)}")

    runs = {c.name: {t: [] for t in ours + p + i} for c, p, i in rows}
    for rnd in range(rounds):
        for c, p, i in sorted(rows, key=lambda r: r[0].mode == "train"):  # inference rows first
            warmup, iters = plan_of(plan, c)
            tools = ours + p + i
            k = rnd % len(tools)
            for t in tools[k:] + tools[:k]:
                r = run_tool(a, t, c, warmup, iters, onnx)
                runs[c.name][t].append(r)
                extra = f", compile {r['compile_s']:.1f} s" if "compile_s" in r else ""
                R.log(f"round {rnd + 1} {c.name} {t}: median {r['median_s'] * 1e3:.1f} ms{extra}")

    wall = time.monotonic() - wall0
    other = R.other_cpu_share(busy0, own0, wall)
    run = {"kind": "quick" if a.quick else "full", "rounds": rounds, "threads": a.threads,
           "date": start.strftime("%Y-%m-%d %H:%M %Z"), "machine": mach, "load_average_start": load0,
           "other_cpu_share": other, "wall_s": wall, "revision": R.git_revision(), "versions": versions,
           "command": " ".join(["bench/peers.py"] + sys.argv[1:]),
           "plan": {c.name: plan_of(plan, c) for c, _, _ in rows}, "peak_gflops": peak,
           "rows": [row_result(c, p, i, runs[c.name]) for c, p, i in rows]}
    if a.baseline:
        run["baseline"] = {"label": a.baseline_label or baseline_revision(a.baseline), "dir": a.baseline}
    if a.json:
        old = {}
        if os.path.isfile(a.json):  # keep the serve-load rows of an earlier run
            with open(a.json) as f:
                old = json.load(f)
        if "serve" in old:
            run["serve"] = old["serve"]
        R.save_json_atomic(a.json, run)
        R.log(f"wrote {a.json}")
    text = peers_report.render(run)
    if a.results:
        R.write_text_atomic(a.results, text)
        R.log(f"wrote {a.results}")
    print(peers_report.ratio_lines(run))
    R.log(f"done in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except R.BenchError as e:
        print(f"peers.py: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
