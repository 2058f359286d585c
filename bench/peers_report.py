"""peers_report.py - bench/RESULTS.md from the JSON of a peers run (bench/peers.py writes the JSON,
bench/serve_load.py adds its "serve" rows; `peers.py --render RUN.json --results RESULTS.md`
rewrites the file from one).  render(run) -> markdown; ratio_lines(run) -> the `ratio` lines.
"""

TOOLS = ("stylenet", "torch", "torch.compile", "onnxruntime", "openvino")
LABEL = {"stylenet": "stylenet", "torch": "PyTorch eager", "torch.compile": "torch.compile",
         "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "litert": "LiteRT", "before": "stylenet before"}


def fmt_value(figure, v):
    if figure == "latency":
        return f"{v * 1e3:.1f} ms"
    return f"{v:.1f} img/s" if v < 1000 else f"{v:.0f} img/s"


def cell(row, tool, peak=None):
    """a tool's figure with its GF/s (and, given the machine's FMA peak, its share of it)"""
    t = row["tools"].get(tool)
    if not t:
        return "n/a"
    s = fmt_value(row["figure"], t["value"])
    if t.get("gflops"):
        s += f" ({t['gflops']:.0f} GF/s" + (f", {100 * t['gflops'] / peak:.0f}% of peak)" if peak else ")")
    return f"**{s}**" if tool == row["fastest_peer"] else s


def speedup(row):
    """this build over the baseline build: > 1 faster"""
    a, b = row["tools"]["stylenet"]["value"], row["tools"]["before"]["value"]
    return b / a if row["figure"] == "latency" else a / b


def met(row):
    if not row.get("target"):
        return ""
    op, v = row["target"]
    return "yes" if (row["ratio"] >= v if op == ">=" else row["ratio"] <= v) else "NO"


def table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                     ["| " + " | ".join(str(x) for x in r) + " |" for r in rows])


def machine_line(run):
    m = run["machine"]
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    return (f"{m['cpu']}, {m['logical_cpus']} logical CPUs, AVX2 {yn(m.get('avx2'))}, AVX-512 {yn(m.get('avx512'))}, "
            f"{m['memory_gb']} GiB RAM, Linux {m['kernel']}; {run['threads']} threads on every tool")


def sharing(run):
    o = run.get("other_cpu_share")
    if o is None:
        return "CPU use of other processes unknown"
    return f"other processes used {100 * o:.0f}% of the machine's CPU time during the run"


def ratio_lines(run):
    out = []
    for r in run["rows"]:
        tgt = f", target {r['target'][0]} {r['target'][1]:.3g}" if r.get("target") else ""
        out.append(f"ratio peers_{r['name']} (vs fastest peer {r['fastest_peer']}; > 1: stylenet faster{tgt}) = "
                   f"{r['ratio']:.3f}")
    return "\n".join(out)


def serve_section(run):
    s = run.get("serve")
    if not s:
        return []
    hdr = ["connections", "requests/s", "p50", "p99", "raw latency, 1 thread", "p50 - raw", "errors"]
    rows = [[x["connections"], f"{x['requests_per_s']:.1f}", f"{x['p50_ms']:.1f} ms", f"{x['p99_ms']:.1f} ms",
             f"{s['raw_latency_1t_ms']:.1f} ms", f"{x['p50_ms'] - s['raw_latency_1t_ms']:.1f} ms",
             x["errors"] or "none"] for x in s["runs"]]
    return ["## Served: wrk against `stylenet serve` on loopback", "",
            f"`{s['command']}` ({s['date']}; {s['sharing']}).  Model: {s['model']}, served with {s['workers']} "
            f"workers (one core each); every request POSTs {s['image']} to /predict (decode, resize, forward, "
            f"JSON answer).  wrk {s['duration_s']} s per line, `--latency`.  Raw latency: bench_net `infer "
            f"{s['arch']} 224 1` on 1 thread (a worker's), median of {s['raw_iters']} iterations: "
            f"{s['raw_latency_1t_ms']:.1f} ms (2 threads: {s['raw_latency_2t_ms']:.1f} ms).  The difference "
            f"p50 - raw is what HTTP, decoding and resizing add per request (at 4 connections also the wait "
            f"for a free worker).", "", table(hdr, rows), ""]


def render(run):
    rows = run["rows"]
    shared = (run.get("other_cpu_share") or 0) > 0.05
    md = ["# stylenet vs today's CPU tools from PyPI: benchmark results", ""]
    if shared:
        md += [f"**The machine was shared during this run: {sharing(run)}. These timings are noisy; rerun "
               f"`make bench-peers` on a quiet machine.**", ""]
    v = run["versions"]
    litert = next((r["tools"]["litert"]["version"] for r in rows if "litert" in r["tools"]), None)
    md += [f"Written by `{run['command']}` (`make bench-peers` from the repository root runs it; "
           f"`bench/peers.py --render` rewrites this file from the run's JSON); {run['kind']} run, "
           f"{run['rounds']} round(s), {run['wall_s'] / 60:.1f} minutes.", "",
           f"- Date: {run['date']}",
           f"- Machine: {machine_line(run)}; load average {run['load_average_start']:.2f} at the start; "
           f"{sharing(run)}",
           f"- stylenet: {run['revision']}",
           f"- Peers (bench/requirements-peers.txt, PyPI): PyTorch {v['torch']} (CPU kernels "
           f"{v['cpu_capability']}{', MKL' if v['mkl'] else ', no MKL'}{', oneDNN' if v['mkldnn'] else ', no oneDNN'}), "
           f"torchvision {v['torchvision']}, "
           f"ONNX Runtime {v['onnxruntime']}, OpenVINO {v['openvino']}" + (f", LiteRT {litert}" if litert else ""),
           "- Same work: fp32, synthetic input, the same graph on every tool: PyTorch runs the torchvision / "
           "efficientnet-lite-pytorch model (channels_last), ONNX Runtime and OpenVINO the ONNX file that "
           "`stylenet export --onnx` writes of it (batch fixed to the row's); train rows are bench_net's "
           "training step (forward, cross-entropy, backward, AdamW) against PyTorch's, eager and "
           "torch.compile (compilation in the warm-up, not timed).", "",
           "## Figures", "",
           "Median of the timed iterations of all rounds pooled (each run a fresh process, the order of the tools "
           "rotating between rounds); GF/s = stylenet's FLOP count of the graph x images/s (a train step counts "
           "3x the forward).  Ratio: against the fastest peer (bold), > 1 means stylenet is faster (images/s "
           "ours / peer's; latency peer's / ours); targets: inference >= 1.2, training >= 1.5.", ""]
    peak = run.get("peak_gflops")
    if peak:
        md[-2] += (f"  % of peak: of the FMA peak bench_kernels measured at the start of the run, {peak:.0f} GFLOPS "
                   f"on {run['threads']} threads.")
    hdr = ["row"] + [LABEL[t] for t in TOOLS] + ["fastest peer", "ratio", "target", "met"]
    body = [[r["name"]] + [cell(r, t, peak if t == "stylenet" else None) for t in TOOLS] +
            [LABEL[r["fastest_peer"]], f"{r['ratio']:.2f}", f"{r['target'][0]} {r['target'][1]:.3g}"
             if r.get("target") else "", met(r)] for r in rows]
    md += [table(hdr, body), ""]
    base = run.get("baseline")
    if base:
        md += [f"Before and after: the same rows, in the same rounds, run by bench_net of the revision "
               f"{base['label']} (a build in `{base['dir']}`).", ""]
        md += [table(["row", f"stylenet {base['label']}", f"stylenet {run['revision']}", "speed-up",
                      "ratio to fastest peer, before", "after"],
                     [[r["name"], cell(r, "before", peak), cell(r, "stylenet", peak), f"{speedup(r):.2f}x",
                       f"{r['ratio'] / speedup(r):.2f}", f"{r['ratio']:.2f}"] for r in rows]), ""]
    info = [r for r in rows if r.get("informational")]
    if info:
        md += ["Informational, not the same work (no ratio): LiteRT runs the shared TFLite MobileNetV2 as it "
               "is, uint8-quantised (integer convolutions), while every row above is fp32 (stylenet, ONNX Runtime "
               "and OpenVINO run that model dequantised).", ""]
        md += [table(["row", "stylenet (fp32)", "LiteRT (uint8)"],
                     [[r["name"], cell(r, "stylenet"), fmt_value(r["figure"], r["tools"][t]["value"])]
                      for r in info for t in r["informational"]]), ""]
    comp = [(r["name"], r["tools"]["torch.compile"]["compile_s"]) for r in rows
            if "compile_s" in r["tools"].get("torch.compile", {})]
    if comp:
        md += ["torch.compile's compilation (warm-up time beyond that many steps at the timed median), per round: " +
               "; ".join(f"{n} " + ", ".join(f"{c:.0f} s" for c in cs) for n, cs in comp) +
               " (inductor's on-disk cache from earlier runs on the machine is used where present: a cold compilation takes "
               "far longer).", ""]
    md += ["Iterations per run (warm-up + timed): " +
           ", ".join(f"{n} {w}+{i}" for n, (w, i) in run["plan"].items()) + ".", ""]
    md += serve_section(run)
    md += ["## Ratio lines", "", "```", ratio_lines(run), "```", "",
           "## Per-round medians (seconds per iteration)", ""]
    for r in rows:
        md.append(f"- {r['name']}: " + "; ".join(
            f"{LABEL[t]} " + ", ".join(f"{x:.4f}" for x in d["round_medians_s"]) for t, d in r["tools"].items()))
    md.append("")
    return "\n".join(md)
