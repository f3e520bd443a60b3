"""The grader's command line (also behind ``make assignments`` and ``make grade``)::

    python -m course_utils.grading assignments notebooks build/assignments
    python -m course_utils.grading grade SUBMISSIONS --source notebooks --out build/grades.csv --jobs 2
    python -m course_utils.grading grade SUBMISSIONS --scheduler tcp://host:8786   # on a Dask cluster (`cluster`)
    python -m course_utils.grading grade SUBMISSIONS --cluster slurm --cluster-config slurm.yaml
    python -m course_utils.grading metadata notebooks/*.ipynb     # add nbgrader's cell metadata
    python -m course_utils.grading review build/grades.csv --accept alice:00.top_k --reject bob:00.top_k

SUBMISSIONS holds one folder per student with that student's notebooks in it (any depth, so
nbgrader's ``submitted/<student>/<assignment>/`` works as it is).
"""
from __future__ import annotations

import argparse
import os
import re

from . import cluster, similarity
from .classroom import grade, review
from .notebooks import make_assignments, nbgrader_metadata, read_notebook, write_notebook
from .registry import ExerciseDefect
from .reports import format_table


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (try 4G or 800M)")
    return int(float(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_utils.grading", description="The course's grader: student versions, nbgrader metadata, a class graded sealed, held rows reviewed.")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assignments", help="write student versions (solutions removed)")
    a.add_argument("src", nargs="?", default="notebooks")
    a.add_argument("out", nargs="?", default="build/assignments")
    m = sub.add_parser("metadata", help="give source notebooks nbgrader's cell metadata (in place)")
    m.add_argument("notebooks", nargs="+")
    g = sub.add_parser("grade", help="execute and grade SUBMISSIONS/<student>/<notebook>.ipynb")
    g.add_argument("submissions")
    g.add_argument("--source", default="notebooks", help="the instructor's notebooks (default notebooks)")
    g.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    g.add_argument("--feedback", default=None, help="folder for one HTML feedback page per student "
                                                    "(default: feedback/ beside the CSV)")
    g.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default 600)")
    g.add_argument("--memory", type=_size, default=6 << 30, help="memory allowed per notebook (default 6G)")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at once on this machine (with --cluster local: "
                                                       "its workers); torch threads are divided among them")
    g.add_argument("--seed", type=int, default=None, help="seed of the cases (default: a new one; it is in the CSV)")
    g.add_argument("--notebooks", default=None, help="comma-separated notebook names to grade (default: all submitted)")
    g.add_argument("--flagged", choices=["review", "keep"], default="review",
                   help="a flagged pass: 'review' (default) scores 0 until a person accepts it; 'keep' counts it")
    g.add_argument("--similar", type=float, default=similarity.THRESHOLD,
                   help=f"share of code two solutions must have in common to be listed (default {similarity.THRESHOLD})")
    d = g.add_argument_group("on a Dask cluster (README, 'A large class')")
    d.add_argument("--scheduler", default=None, help="a running Dask scheduler: tcp://host:8786, or its scheduler file")
    d.add_argument("--cluster", default=None, choices=["local", *cluster.JOBQUEUE],
                   help="start one: 'local' (--jobs workers on this machine) or a batch queue (dask-jobqueue)")
    d.add_argument("--cluster-config", default=None, help="YAML file of the batch queue's job (queue, cores, memory, ...)")
    d.add_argument("--files", choices=["send", "shared"], default="send",
                   help="submissions reach the workers with each task (send, default) or by a path every worker "
                        "sees (shared)")
    d.add_argument("--tries", type=int, default=3, help="runs of a notebook whose worker dies each time before it "
                                                        "counts as crashed (default 3)")
    r = sub.add_parser("review", help="accept or reject rows held for review in a grades CSV")
    r.add_argument("csv")
    r.add_argument("--accept", nargs="*", default=[], metavar="STUDENT:EXERCISE")
    r.add_argument("--reject", nargs="*", default=[], metavar="STUDENT:EXERCISE")
    args = p.parse_args(argv)
    if args.cmd == "assignments":
        for path in make_assignments(args.src, args.out):
            print(path)
    elif args.cmd == "metadata":
        for path in args.notebooks:
            write_notebook(path, nbgrader_metadata(read_notebook(path)))
            print(path)
    elif args.cmd == "grade":
        feedback = args.feedback or os.path.join(os.path.dirname(os.path.abspath(args.out)), "feedback")
        client = None
        if args.scheduler or args.cluster:
            client = cluster.connect(args.scheduler, args.cluster, args.cluster_config, args.jobs, args.tries)
        try:
            grade(args.submissions, args.source, args.out, args.timeout, args.jobs, args.memory, args.seed,
                  args.notebooks.split(",") if args.notebooks else None, feedback, flagged=args.flagged,
                  similar=args.similar, client=client, files=args.files, tries=args.tries)
        except ExerciseDefect as e:
            raise SystemExit(f"grading stopped: {e}") from None
        finally:
            if client is not None:
                cluster.close(client)
    elif args.cmd == "review":
        print(format_table(review(args.csv, args.accept, args.reject)))
