"""Writes the PyTorch reference data the C tests compare against.

Runs every tools/fixtures_*.py: each defines make(outdir) and writes safetensors files there.
A script is re-run only when its source (or oracle_common.py) changed since its last run.
Usage: python tools/make_fixtures.py OUTDIR [NAME ...]
"""
import hashlib
import importlib.util
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))


def digest(path):
    h = hashlib.sha256()
    for p in (path, os.path.join(here, "oracle_common.py")):
        if os.path.exists(p):
            h.update(open(p, "rb").read())
    return h.hexdigest()


def main():
    out = sys.argv[1]
    only = set(sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    sys.path.insert(0, here)
    for fn in sorted(os.listdir(here)):
        if not (fn.startswith("fixtures_") and fn.endswith(".py")):
            continue
        name = fn[len("fixtures_"):-3]
        if only and name not in only:
            continue
        path = os.path.join(here, fn)
        stamp = os.path.join(out, f".{name}.stamp")
        d = digest(path)
        if os.path.exists(stamp) and open(stamp).read() == d:
            continue
        t = time.time()
        spec = importlib.util.spec_from_file_location(fn[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.make(out)
        open(stamp, "w").write(d)
        print(f"fixtures {name}: {time.time() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
