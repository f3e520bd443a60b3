"""`make bench`: time every notebook and the course's expensive functions; print one table.

Budgets come from the issues (2 CPU cores). Each scripts/bench_<topic>.py adds rows through a list
BENCHES = [(what, budget_or_None, function)], where the function returns the measured
seconds, or (seconds, note) to print a rate or a ratio beside it, or (value, note, unit) for a figure
that is not a time (a share in %, a size in MB), with its budget in that unit.

    python scripts/bench.py                 # everything
    python scripts/bench.py --no-notebooks  # functions only
    python scripts/bench.py --only 03       # notebooks and benches whose name contains "03"
"""
import argparse
import glob
import importlib.util
import os
import sys
import time

import torch
from nbexec import execute_file  # scripts/, beside this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Issue #19: 01-07, 09 and 10 within 120 s each on 2 cores, 08 within 150 s; 00 is the quick start.
NOTEBOOK_BUDGETS = {"00": 30, "01": 120, "02": 120, "03": 120, "04": 120, "05": 120, "06": 120,
                    "07": 120, "08": 150, "09": 120, "10": 120}


def time_notebook(path):
    t0 = time.perf_counter()
    execute_file(path, timeout=900, env={"MPLBACKEND": "Agg"})
    return time.perf_counter() - t0


def timed(fn, repeat=1):
    """Best-of-`repeat` wall time of fn()."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--no-notebooks", action="store_true")
    p.add_argument("--only", default="")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []

    def add(what, value, budget, note="", unit="s"):
        ok = "" if budget is None else ("ok" if value <= budget else "OVER")
        rows.append((what, f"{value:8.2f} {unit}", "" if budget is None else f"{budget:6.{0 if unit == 's' else 1}f} {unit}",
                     ok, note))
        print(f"  {what}: {value:.2f} {unit} {note}", file=sys.stderr, flush=True)

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    for path in sorted(glob.glob(os.path.join(ROOT, "scripts", "bench_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for what, budget, fn in mod.BENCHES:
            if args.only and args.only not in what:
                continue
            out = fn()
            add(what, *(out if isinstance(out, tuple) else (out,))[:1], budget,
                *(out[1:] if isinstance(out, tuple) else ()))
    if not args.no_notebooks:
        for path in sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9]*.ipynb"))):
            name = os.path.basename(path)
            if args.only and args.only not in name:
                continue
            add(f"notebook {name}", time_notebook(path), NOTEBOOK_BUDGETS.get(name[:2]))
    widths = [max(len(r[i]) for r in rows + [("what", "measured", "budget", "", "note")]) for i in range(5)]
    header = ("what", "measured", "budget", "", "note")
    print(f"\nBenchmarks on {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    over = [r[0] for r in rows if r[3] == "OVER"]
    print(f"\n{len(rows)} measured, {len(over)} over budget" + (f": {', '.join(over)}" if over else ""))


if __name__ == "__main__":
    main()
