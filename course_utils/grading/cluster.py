"""Grading a class on Dask (`dask.distributed`): one task per submitted notebook, on the workers of a
scheduler somewhere (a lab's machines: ``dask scheduler`` and ``dask worker``), of a cluster this process
starts on this machine (``local``) or of a batch queue (dask-jobqueue: Slurm, PBS, SGE, LSF, HTCondor).

What a worker does is what the grader's threads do on one machine (`submission.run_task`: a copy of the
submission in a sealed kernel, the kernel asked for its answers) and it sends back the report; the verdicts
are computed in the grader's process (`classroom.judge_notebook`). The submissions travel with the tasks
(files="send", a notebook and its folder's data, gzipped) or, on a filesystem every worker shares, as a
path and sha256 (files="shared"). Dask itself runs a task again elsewhere when its worker dies, and gives
up after `tries` deaths (the scheduler's allowed-failures): that notebook is "crashed", the class goes on.

Dask is used rather than a queue of our own: it already has the schedulers for a lab, a cloud and every
batch system a university runs, the retry of a dead worker's tasks, and a dashboard.
"""
from __future__ import annotations

import logging
import os
import sys

import yaml

from .submission import run_task

JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
            "htcondor": "HTCondorCluster"}
THREADS_ENV = "COURSE_GRADER_THREADS"  # set on a worker: the torch threads of each notebook it runs


def connect(scheduler=None, cluster=None, config=None, workers=2, tries=3):
    """A Dask client for grading, and the scheduler's deaths-per-task limit set to `tries`.

    scheduler: the address of a running scheduler (tcp://host:8786) or its scheduler file. cluster: "local"
    (`workers` single-threaded worker processes on this machine) or a batch system of dask-jobqueue
    (`JOBQUEUE`), whose arguments come from the YAML file `config` (under "cluster"; "scale" holds
    `adapt`'s minimum_jobs/maximum_jobs or a fixed "jobs")."""
    from distributed import Client, LocalCluster
    if (scheduler is None) == (cluster is None):
        raise SystemExit("give either --scheduler ADDRESS (a running Dask scheduler) or --cluster local|"
                         + "|".join(JOBQUEUE))
    if scheduler is not None:
        where = {"scheduler_file": scheduler} if os.path.isfile(scheduler) else {"address": scheduler}
        try:
            client = Client(**where, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise SystemExit(f"cannot reach the Dask scheduler at {scheduler}: {e}. Start one with `dask scheduler` "
                             "and workers with `dask worker ADDRESS --nthreads 1` (README, 'A large class')") from None
    elif cluster == "local":
        # Dask's nanny writes its workers' settings (distributed.nanny.pre-spawn-environ: OMP_NUM_THREADS=1, MKL's,
        # OpenBLAS's) into the environment of this process before each spawn, so everything this process starts
        # later (a kernel, a benchmark's notebook) would compute on one thread; the workers get them as their own
        import dask
        settings = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
            client = Client(LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                                         env={k: str(v) for k, v in settings.items()}))
    elif cluster in JOBQUEUE:
        settings = read_config(config, cluster)
        import dask_jobqueue
        jobs = getattr(dask_jobqueue, JOBQUEUE[cluster])(**settings["cluster"])
        scale = settings.get("scale") or {"jobs": 1}
        jobs.scale(jobs=scale["jobs"]) if "jobs" in scale else jobs.adapt(**scale)
        client = Client(jobs)
    else:
        raise SystemExit(f"--cluster {cluster!r}: choose local or one of {', '.join(JOBQUEUE)}")
    client.run_on_scheduler(_for_grading, tries=tries)
    logging.getLogger("distributed.client").addFilter(_LOST_SCHEDULER)
    return client


def close(client):
    """Close the client, and the cluster it started (a local or batch one), quietly if the scheduler is gone."""
    try:
        started = client.cluster
        client.close(timeout=10)
        if started is not None:
            started.close(timeout=10)
    except Exception:  # noqa: BLE001 - a scheduler that went away has nothing left to close
        pass


class _LostScheduler(logging.Filter):
    """Drop the client's traceback of a connection refused while it tries to reach a scheduler that went
    away: `run` ends with a message that says what happened and what to do."""

    def filter(self, record):
        e = record.exc_info[1] if record.exc_info else None
        while e is not None:  # the client logs its cancelled reconnection, caused by the refused connection
            if isinstance(e, OSError):
                return False
            e = e.__cause__ or e.__context__
        return True


_LOST_SCHEDULER = _LostScheduler()


def _for_grading(dask_scheduler, tries):
    """The scheduler's settings for grading: a notebook whose worker died `tries` times is given up
    (KilledWorker), and a worker is sent one notebook per thread from the scheduler's queue, none waiting
    on the worker (a notebook waiting on a worker that dies would count that death against it too)."""
    dask_scheduler.allowed_failures = tries - 1
    dask_scheduler.WORKER_SATURATION = 1.0


def read_config(path, cluster) -> dict:
    """The YAML file of a batch cluster: {"cluster": dask-jobqueue's arguments, "scale": {...}}; the workers
    run this Python (the course's environment) unless it says otherwise."""
    if not path:
        raise SystemExit(f"--cluster {cluster} needs --cluster-config FILE.yaml: the queue, cores, memory and "
                         "walltime of a job (README, 'A large class', has an example)")
    try:
        with open(path, encoding="utf-8") as f:
            settings = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"cannot read the cluster's configuration {path}: {e}") from None
    if not isinstance(settings.get("cluster"), dict):
        raise SystemExit(f"{path} has no 'cluster:' section (dask-jobqueue's {JOBQUEUE[cluster]} arguments)")
    wrong = set(settings) - {"cluster", "scale"}
    if wrong:
        raise SystemExit(f"{path}: unknown section(s) {', '.join(sorted(wrong))}; expected 'cluster' and 'scale'")
    settings["cluster"].setdefault("python", sys.executable)
    return settings


def notebook_threads() -> int:
    """The torch threads of one notebook on this worker: COURSE_GRADER_THREADS where the worker sets it,
    else the cores this process may use divided among the tasks all workers of this machine run at once
    (two workers of one thread on 2 cores: 1 each, as `--jobs 2` gives on one machine)."""
    if os.environ.get(THREADS_ENV):
        return max(1, int(os.environ[THREADS_ENV]))
    from distributed import get_client, get_worker
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    worker = get_worker()
    try:
        info = get_client().scheduler_info(n_workers=-1)["workers"]
        here = sum(w["nthreads"] for w in info.values() if w["host"] == worker.ip) or worker.state.nthreads
    except Exception:  # noqa: BLE001 - without the scheduler's view, this worker's own threads divide the cores
        here = worker.state.nthreads
    return max(1, cores // here)


def work(task: dict) -> dict:
    """A Dask task: run one submitted notebook sealed on this worker (`submission.run_task`)."""
    task = dict(task, threads=task.get("threads") or notebook_threads())
    return run_task(task)


def run(client, keys, task_for, tries=3):
    """Run the tasks of `keys` on the cluster; yields (key, report) as each ends, exactly once per key.

    task_for(key) makes a key's task (or a ready report: a submission that is not run) just before it is
    sent. Three tasks per worker thread are out at once (a class of packed notebooks never sits in memory):
    enough for the scheduler to keep them in its own queue ("root-ish" tasks of one group, `_for_grading`)
    and hand each worker one at a time, and for an adaptive batch cluster to see the work waiting. A
    notebook whose worker died `tries` times comes back as a crash; the scheduler going away ends the run
    (SystemExit) after what was graded."""
    from concurrent.futures import CancelledError

    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    pending = iter(enumerate(keys))
    futures = as_completed()
    name = {}
    done = 0

    def fill():
        window = max(4, 3 * sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()))
        while futures.count() < window:
            index, key = next(pending, (None, None))
            if key is None:
                return
            task = task_for(key)
            if "error" in task:
                yield key, task
                continue
            # keys of one group, "grade" (dask.utils.key_split), whatever the student's name
            future = client.submit(work, task, key=f"grade-{index:06d}-{key[0]}/{key[1]}", pure=False, retries=0)
            name[future.key] = key
            futures.add(future)

    yield from fill()
    while futures.count():
        try:
            future = next(futures)
        except StopIteration:
            break
        key = name.pop(future.key)
        try:
            report = future.result()
        except KilledWorker:
            report = {"error": f"its worker died {tries} time(s) while running it (a machine out of memory, or a "
                               "process killed): not graded", "answers": {}}
        except CancelledError:  # not by us: the client lost the scheduler
            break
        except Exception as e:  # noqa: BLE001 - the grader's own code failed on the worker: that row's crash
            report = {"error": f"the cluster could not run it: {type(e).__name__}: {e}", "answers": {}}
        future.release()
        done += 1
        yield key, report
        yield from fill()
    if name or next(pending, None) is not None:
        raise SystemExit(f"grading stopped: the Dask scheduler at {client.scheduler.address} went away after "
                         f"{done} notebook(s); the CSV holds what was graded. Start the scheduler again and run the "
                         "same command: it grades only what is missing")
