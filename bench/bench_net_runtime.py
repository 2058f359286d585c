"""bench_net_runtime.py - the inference work of bench_net.c in an inference runtime from PyPI: ONNX
Runtime or OpenVINO on an ONNX file, or LiteRT on a TFLite file, timed per iteration.  Runs in the
peers' venv (build/venv-peers, bench/requirements-peers.txt); bench/peers.py runs it.

Usage: bench_net_runtime.py infer ARCH SIZE BATCH --runtime onnxruntime|openvino|litert --model FILE
                            [--threads N] [--iters K] [--warmup W] [--seed S]
       bench_net_runtime.py check      the peers' venv works: prints one JSON object, exit 1 if not
  ARCH is a label carried into the output (the graph is FILE's).
  onnxruntime  InferenceSession on CPUExecutionProvider, all graph optimisations, sequential
               execution, intra-op threads N, inter-op 1; the batch dimension fixed to BATCH
               (add_free_dimension_override_by_name), as stylenet fixes it (net_set_batch)
  openvino     read_model, reshaped to [BATCH, 3, SIZE, SIZE], compile_model on CPU with
               INFERENCE_NUM_THREADS N, PERFORMANCE_HINT LATENCY, INFERENCE_PRECISION_HINT f32
  litert       ai_edge_litert Interpreter(num_threads=N), input resized to BATCH, the model's own
               input type (uint8 for a quantised model: not the fp32 work of the other rows)
Input: a fixed batch of standard-normal pixels [BATCH, 3, SIZE, SIZE] float32 from numpy's
default_rng(--seed) (LiteRT: [BATCH, SIZE, SIZE, 3] of the input's type, uniform).
Output: one JSON object on stdout with bench_net.c's keys (times, median_s, images_per_s,
peak_rss_kb, ...) plus "runtime" and "version"; "fwd_flops_per_image" is 0 (the caller takes
stylenet's count of the same graph).
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def onnxruntime_runner(a):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_free_dimension_override_by_name("batch", a.batch)
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(a.seed).standard_normal((a.batch, 3, a.size, a.size), dtype=np.float32)
    return (lambda: sess.run(None, {name: x})[0]), ort.__version__


def openvino_runner(a):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(a.model)
    model.reshape({model.inputs[0].get_any_name(): [a.batch, 3, a.size, a.size]})
    cm = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY",
                                           "INFERENCE_PRECISION_HINT": "f32"})
    req = cm.create_infer_request()
    x = np.random.default_rng(a.seed).standard_normal((a.batch, 3, a.size, a.size), dtype=np.float32)

    def step():
        req.infer({0: x})
        return req.get_output_tensor(0).data
    return step, ov.__version__


def litert_runner(a):
    from ai_edge_litert.interpreter import Interpreter
    from importlib.metadata import version
    it = Interpreter(model_path=a.model, num_threads=a.threads)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [a.batch, a.size, a.size, 3])
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(a.seed)
    if np.issubdtype(inp["dtype"], np.integer):
        lim = np.iinfo(inp["dtype"])
        x = rng.integers(lim.min, lim.max, (a.batch, a.size, a.size, 3), endpoint=True).astype(inp["dtype"])
    else:
        x = rng.standard_normal((a.batch, a.size, a.size, 3), dtype=np.float32)

    def step():
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"]).astype(np.float32)
    return step, version("ai-edge-litert") + f" ({np.dtype(inp['dtype']).name} input)"


RUNTIMES = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner, "litert": litert_runner}


def check():
    """the peers' venv: torch on its vector kernels with MKL and oneDNN, its CUDA libraries from the
    venv only, and the three runtimes importable"""
    import torch
    import torchvision
    import onnxruntime
    import openvino
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    cap = torch.backends.cpu.get_cpu_capability()
    with open("/proc/self/maps") as f:
        outside = sorted({line.split()[-1] for line in f if "/libcu" in line or "/libnccl" in line
                          or "/libnv" in line} - {""})
    venv = os.path.realpath(sys.prefix)
    outside = [p for p in outside if not os.path.realpath(p).startswith(venv)]
    info = {"torch": torch.__version__, "torchvision": torchvision.__version__, "cpu_capability": cap,
            "mkl": torch.backends.mkl.is_available(), "mkldnn": torch.backends.mkldnn.is_available(),
            "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__,
            "libraries_outside_venv": outside}
    print(json.dumps(info))
    ok = cap in ("AVX2", "AVX512") and info["mkl"] and info["mkldnn"] and not outside
    if not ok:
        print("bench_net_runtime: the peers' venv is not usable as measured (see the JSON above: torch must run "
              "its AVX2/AVX512 kernels with MKL and oneDNN, loading no CUDA library from outside the venv)",
              file=sys.stderr)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["infer", "check"])
    ap.add_argument("arch", nargs="?", default="")
    ap.add_argument("size", nargs="?", type=int, default=224)
    ap.add_argument("batch", nargs="?", type=int, default=1)
    ap.add_argument("--runtime", choices=sorted(RUNTIMES))
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mode == "check":
        return check()
    if not a.runtime or not a.model:
        ap.error("infer needs --runtime and --model")
    if a.size <= 0 or a.batch <= 0 or a.iters <= 0 or a.warmup < 0 or a.threads <= 0:
        ap.error("SIZE, BATCH, --iters and --threads must be positive")
    if not os.path.isfile(a.model):
        sys.exit(f"bench_net_runtime: {a.model}: no such model file")
    t0 = time.perf_counter()
    step, ver = RUNTIMES[a.runtime](a)
    load_s = time.perf_counter() - t0
    print(f"bench_net_runtime: {a.runtime} {ver} {a.arch} {a.size}x{a.size} batch {a.batch}, {a.threads} threads, "
          f"{a.warmup} warm-up + {a.iters} timed", file=sys.stderr)
    times = []
    for it in range(a.warmup + a.iters):
        t = time.perf_counter()
        y = step()
        t = time.perf_counter() - t
        if it >= a.warmup:
            times.append(t)
        if it == 0 and not math.isfinite(float(np.asarray(y).reshape(-1)[0])):
            sys.exit(f"bench_net_runtime: {a.runtime} gives a non-finite output for {a.model}")
    med = statistics.median(times)
    print(json.dumps({"side": a.runtime, "runtime": a.runtime, "version": ver, "mode": "infer", "arch": a.arch,
                      "size": a.size, "batch": a.batch, "threads": a.threads, "warmup": a.warmup, "iters": a.iters,
                      "times": [round(t, 6) for t in times], "median_s": round(med, 6),
                      "images_per_s": round(a.batch / med, 3), "load_s": round(load_s, 3),
                      "fwd_flops_per_image": 0, "peak_rss_kb": peak_rss_kb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
