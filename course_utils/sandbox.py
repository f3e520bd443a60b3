"""Run an untrusted command (a student's notebook) with a time limit, a memory limit and no network.

Linux with `unshare` (util-linux): the command runs in a network namespace of its own (no
interface but a loopback that is down: nothing on this machine or beyond can be reached) and a PID
namespace of its own (it cannot see or signal the grader, and everything it forked dies with it).
As root the namespaces need nothing more; as another user they need unprivileged user namespaces
(most distributions allow them). Where neither works (macOS, a locked-down container), the command
still runs in a session of its own with the limits below, and `isolation()` says what is missing.

Memory: the resident memory of the command and all its descendants is summed every 0.2 s; over the
limit, everything is killed. Time: past the limit, everything is killed. Both are reported.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import psutil

OK, TIMED_OUT, OUT_OF_MEMORY = "ok", "timed out", "out of memory"


@functools.lru_cache(maxsize=1)
def _namespace_prefix() -> tuple[tuple[str, ...], str]:
    unshare = shutil.which("unshare")
    if not unshare or not hasattr(os, "getuid"):
        return (), "no network or PID isolation: the `unshare` command is not available here"
    base = [unshare, "--net", "--pid", "--fork", "--kill-child"]
    tries = [base] if os.getuid() == 0 else [base + ["--map-root-user"]]
    for prefix in tries:
        try:
            r = subprocess.run(prefix + ["true"], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = str(e)
            continue
        if r.returncode == 0:
            return tuple(prefix), "no network (own network namespace), own PID namespace"
        reason = r.stderr.decode(errors="replace").strip()
    return (), f"no network or PID isolation: unshare failed ({reason})"


def isolation() -> str:
    """What this machine's sandbox gives: network and PID namespaces, or why not."""
    return _namespace_prefix()[1]


@dataclass
class Result:
    status: str  # OK, TIMED_OUT or OUT_OF_MEMORY
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_memory: int  # bytes, the largest sum seen


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc] + proc.children(recursive=True)
    except psutil.Error:
        return []


def _rss(procs) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _kill(popen: subprocess.Popen, procs):
    try:
        os.killpg(popen.pid, signal.SIGKILL)  # the namespace's first process: the kernel kills the rest
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:  # without namespaces: everything that was seen in the tree
        try:
            p.kill()
        except psutil.Error:
            pass


def run(cmd, stdin: str = "", timeout: float = 600, memory: int | None = None, env=None, cwd=None,
        isolate: bool = True) -> Result:
    """Run `cmd` (a list) with `stdin` as its input; kill it and all it started at `timeout` seconds or
    when their memory passes `memory` bytes. Returns what it printed and how it ended."""
    prefix = list(_namespace_prefix()[0]) if isolate else []
    t0 = time.monotonic()
    popen = subprocess.Popen(prefix + list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, start_new_session=True)
    root = psutil.Process(popen.pid)
    status, peak, seen = OK, 0, {}
    outputs = {}

    def talk():
        outputs["out"], outputs["err"] = popen.communicate(stdin)

    reader = threading.Thread(target=talk, daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(0.2)
        procs = _tree(root)
        for p in procs:
            seen[p.pid] = p
        used = _rss(procs)
        peak = max(peak, used)
        if memory and used > memory:
            status = OUT_OF_MEMORY
        elif time.monotonic() - t0 > timeout:
            status = TIMED_OUT
        if status != OK:
            _kill(popen, list(seen.values()))
            reader.join(30)
            break
    _kill(popen, [p for p in seen.values() if p.is_running()])  # nothing it started outlives it
    return Result(status, popen.returncode, outputs.get("out") or "", outputs.get("err") or "",
                  time.monotonic() - t0, peak)
