"""The grader's kernel: a fresh IPython kernel, sealed, run cell by cell with a blocking Jupyter client.

Why not nbclient (which `make run`, `make bench` and the figures script use, scripts/nbexec.py): the
grader sends the kernel code of its own between the notebook's cells (the tripwire, then one question per
exercise), needs one deadline for the whole notebook rather than one per cell, and must read the answer
line of a cell whose outputs a submission can flood or clear. It polls with short timeouts, as nbval
does, so it never waits past its deadline.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from queue import Empty

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from . import sandbox


class KernelDied(RuntimeError):
    """The kernel process ended while a cell ran (os._exit, a crash, killed for memory)."""


class Kernel:
    """A fresh IPython kernel: `run(code, deadline)` returns (outputs, error or None).

    transport="ipc" talks over Unix sockets (it works inside a network namespace without even a
    loopback); quiet=True gives the kernel no handle on this process's stdout and stderr.
    sealed={"timeout": s, "memory": bytes}: the kernel runs in the sandbox (`sandbox.kernel`: only `cwd`
    writable, no network, those limits); afterwards `sandbox_result` says how it ended.
    """

    def __init__(self, cwd=None, env=None, kernel_name="python3", startup_timeout=120, transport="tcp", quiet=False,
                 sealed=None):
        self.sandbox_result = None
        self._tmp = tempfile.TemporaryDirectory(prefix="kernel-") if transport == "ipc" or sealed else None
        kw = {"transport": "ipc", "ip": os.path.join(self._tmp.name, "k")} if self._tmp else {}
        if sealed is not None:
            sandbox.install_kernel(self._tmp.name, "sealed", sealed.get("timeout", 3600.0), sealed.get("memory"),
                                   parent=os.getpid())
            kernel_name = "sealed"
            kw["kernel_spec_manager"] = KernelSpecManager(kernel_dirs=[os.path.join(self._tmp.name, "kernels")])
            kw["connection_file"] = os.path.join(self._tmp.name, "connection.json")
        self.km = KernelManager(kernel_name=kernel_name, **kw)
        stdio = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL} if quiet else {}
        self.km.start_kernel(cwd=cwd or os.getcwd(), env={**os.environ, **(env or {})}, **stdio)
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
        except BaseException:
            self.close()
            raise

    def run(self, code, deadline):
        """Execute `code`; collect its outputs until the kernel is idle or `deadline` (monotonic) passes.

        Returns (outputs, error): error is (ename, evalue) or None. Raises TimeoutError at the deadline.
        """
        kc = self.kc
        msg_id = kc.execute(code, allow_stdin=False, stop_on_error=False)
        outputs, clear_next, error = [], False, None
        panels = {}  # comm id -> the outputs an ipywidgets.Output holds (widgets.draw_into fills them)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("ran out of time")
            try:
                msg = kc.get_iopub_msg(timeout=min(left, 1.0))
            except Empty:
                if not self.km.is_alive():
                    raise KernelDied("the kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind in ("comm_open", "comm_msg"):
                state = content.get("data", {}).get("state", {})
                if state.get("_model_name") == "OutputModel" or content.get("comm_id") in panels:
                    panels[content["comm_id"]] = state.get("outputs", panels.get(content["comm_id"], []))
                continue
            if kind == "clear_output":
                if content.get("wait"):
                    clear_next = True
                else:
                    outputs = []
                continue
            if kind in ("stream", "display_data", "execute_result", "error"):
                if clear_next:
                    outputs, clear_next = [], False
                outputs.append(nbformat.v4.output_from_msg(msg))
                if kind == "error":
                    error = (content["ename"], content["evalue"])
        for shown in panels.values():  # what the panels show goes into the saved notebook too (make run's HTML)
            outputs += [nbformat.from_dict(o) for o in shown]
        self.execution_count = None
        while True:  # the execute_reply, for the execution count
            left = deadline - time.monotonic()
            try:
                reply = kc.get_shell_msg(timeout=max(0.1, min(left, 5.0)))
            except Empty:
                break
            if reply["parent_header"].get("msg_id") == msg_id:
                self.execution_count = reply["content"].get("execution_count")
                break
        return outputs, error

    def interrupt(self, wait=10.0):
        """Interrupt the running cell (SIGINT); True when the kernel is idle again within `wait` seconds."""
        self.km.interrupt_kernel()
        try:
            self.run("pass", time.monotonic() + wait)
            return True
        except TimeoutError:
            return False

    def close(self):
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
            if self._tmp:
                self.sandbox_result = _read_json(sandbox.result_path(os.path.join(self._tmp.name, "connection.json")))
                self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
