#!/usr/bin/python3
"""serve_load.py - requests/s and latency of `stylenet serve` under wrk on loopback, next to the raw
latency of the same model, so that what HTTP, decoding and resizing add is visible.

Usage (from bench/; `make -C bench serve-load`):
  serve_load.py [--build DIR] [--duration S] [--image PHOTO] [--workers N] [--json RUN.json] [--results RESULTS.md]
What runs:
  1. bench_net `infer mobilenet_v2_tf 224 1` on 1 thread (one serve worker's) and on 2: the raw
     latency of the frozen forward pass that serve runs (median of the timed iterations);
  2. `stylenet serve` of the shared TFLite MobileNetV2 (ImageNet, 1001 classes), --workers N (2),
     --port 0 on 127.0.0.1;
  3. wrk with tests/serve/predict.lua (the serve test's script: every request POSTs PHOTO, default
     the shared imagenet-check/bird.png, to /predict) for S seconds (5) at 1 connection (-t1) and at
     4 (-t2), --latency: requests/s, p50, p99, error answers;
  4. SIGTERM to the server.
The rows go into RUN.json under "serve" (the file of a peers run, which keeps them: bench/peers.py)
and, when RUN.json holds a peers run, RESULTS.md is rewritten from it (peers_report.py).  wrk is
Debian's (tools/setup-debian.sh installs it).
"""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

import peers
import peers_report
import run as R

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARCH = "mobilenet_v2_tf"


def wrk_ms(out, q):
    """wrk's latency-distribution line for quantile q ("     50%    1.23ms") in ms, or None"""
    m = re.search(rf"^\s+{q}%\s+([0-9.]+)(us|ms|s|m)\s*$", out, re.M)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def run_wrk(port, conns, duration, image):
    cmd = ["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{duration}s", "--latency", "-s",
           os.path.join(ROOT, "tests", "serve", "predict.lua"), f"http://127.0.0.1:{port}/predict"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                           env=dict(os.environ, STYLENET_WRK_IMAGE=image))
    except (OSError, subprocess.TimeoutExpired) as e:
        raise R.BenchError(f"wrk (Debian package wrk) did not run: {e}")
    out = p.stdout + p.stderr
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50, p99 = wrk_ms(out, "50"), wrk_ms(out, "99")
    if p.returncode != 0 or not rps or not total or p50 is None or p99 is None:
        raise R.BenchError(f"wrk gave no figures (exit status {p.returncode}): {' '.join(cmd)}\n{out[-800:]}")
    errors = "; ".join(line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line)
    return {"connections": conns, "requests": int(total.group(1)), "requests_per_s": float(rps.group(1)),
            "p50_ms": p50, "p99_ms": p99, "errors": errors, "command": " ".join(cmd)}


def start_server(stylenet, model, labels, workers):
    cmd = [stylenet, "serve", "--model", model, "--labels", labels, "--host", "127.0.0.1", "--port", "0",
           "--threads", str(workers), "--quiet"]
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    m = re.search(r":(\d+)/ with", line)
    if not m:
        srv.kill()
        raise R.BenchError(f"stylenet serve did not start: {' '.join(cmd)}\n{line}{srv.stderr.read()[-800:]}")
    return srv, int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--image", help="the photo each request sends (default: imagenet-check/bird.png)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--raw-iters", type=int, default=30)
    ap.add_argument("--json", help="the peers run's JSON to add the rows to")
    ap.add_argument("--results", help="rewrite this RESULTS.md when the JSON holds a peers run")
    a = ap.parse_args()
    if a.duration <= 0 or a.workers <= 0 or a.raw_iters <= 0:
        ap.error("--duration, --workers and --raw-iters must be positive")
    build = os.path.abspath(a.build)
    stylenet, bench_net = os.path.join(build, "stylenet"), os.path.join(build, "bench", "bench_net")
    model = peers.tflite_path()
    labels = os.path.join(os.path.dirname(model), "imagenet_labels.txt")
    image = a.image or os.path.join(os.path.dirname(model), "imagenet-check", "bird.png")
    for f in (stylenet, bench_net, model, labels, image):
        if not os.path.isfile(f):
            ap.error(f"{f} is missing (build: make all, make -C bench bins; shared files: STYLENET_SHARED)")
    start = datetime.datetime.now().astimezone()
    busy0, own0, wall0 = R.cpu_busy_s(), R.own_cpu_s(), time.monotonic()
    raw = {}
    for t in (1, 2):
        r = R.run_json([bench_net, "infer", ARCH, "224", "1", "--threads", str(t), "--iters", str(a.raw_iters),
                        "--warmup", "5"], f"raw latency ({t} thread(s))")[-1]
        raw[t] = r["median_s"] * 1e3
        R.log(f"raw latency {ARCH} 224 b1, {t} thread(s): {raw[t]:.1f} ms")
    srv, port = start_server(stylenet, model, labels, a.workers)
    try:
        runs = []
        for c in (1, 4):
            runs.append(run_wrk(port, c, a.duration, image))
            x = runs[-1]
            R.log(f"wrk {c} connection(s): {x['requests_per_s']:.1f} requests/s, p50 {x['p50_ms']:.1f} ms, "
                  f"p99 {x['p99_ms']:.1f} ms{', ' + x['errors'] if x['errors'] else ''}")
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
    other = R.other_cpu_share(busy0, own0, time.monotonic() - wall0)
    serve = {"command": " ".join(["bench/serve_load.py"] + sys.argv[1:]), "date": start.strftime("%Y-%m-%d %H:%M %Z"),
             "sharing": peers_report.sharing({"other_cpu_share": other}), "other_cpu_share": other,
             "model": f"{os.path.basename(model)} (TF MobileNetV2 1.0/224, dequantised to fp32)", "arch": ARCH,
             "workers": a.workers, "image": os.path.basename(image), "duration_s": a.duration,
             "raw_iters": a.raw_iters, "raw_latency_1t_ms": raw[1], "raw_latency_2t_ms": raw[2], "runs": runs}
    run = {}
    if a.json and os.path.isfile(a.json):
        with open(a.json) as f:
            run = json.load(f)
    run["serve"] = serve
    if a.json:
        R.save_json_atomic(a.json, run)
        R.log(f"wrote {a.json}")
    if a.results and "rows" in run:
        R.write_text_atomic(a.results, peers_report.render(run))
        R.log(f"wrote {a.results}")
    print("\n".join(peers_report.serve_section({"serve": serve})))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except R.BenchError as e:
        print(f"serve_load.py: {e}", file=sys.stderr)
        sys.exit(1)
