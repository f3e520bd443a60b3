"""`make run`: execute notebooks (nbclient, scripts/nbexec.py) and write the executed copies to --out."""
import argparse
import os
import time

import nbformat

from nbexec import CellExecutionError, DeadKernelError, execute


def main():
    p = argparse.ArgumentParser()
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", default="build")
    p.add_argument("--timeout", type=float, default=900)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for path in args.notebooks:
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        try:
            execute(nb, cwd=os.path.dirname(os.path.abspath(path)), timeout=args.timeout)
            status = "ok"
        except (CellExecutionError, DeadKernelError, TimeoutError) as e:  # keep the outputs up to the failure
            status = "FAILED: " + str(e).strip().splitlines()[-1]
            failed.append(path)
        nbformat.write(nb, os.path.join(args.out, os.path.basename(path)))
        print(f"{path}: {time.time() - t0:.0f} s, {status}", flush=True)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
