"""Run untrusted code (a student's notebook) sealed off from the files, the network and the other processes.

Sealed (`sealed`): the command sees the system, the Python environment and the course package read-only,
the folders it is given writable (the grader gives it a copy of one submission), an empty /tmp and home,
and nothing else: no other submission, no source notebook, no grader output, no write access to the
environment. It has no network (a network namespace of its own) and a PID namespace of its own (it cannot
see or signal the grader, and everything it started dies with it). Two well-kept ways to get there:

- bubblewrap (`bwrap`, Debian's `bubblewrap` package; the Makefile installs it), the sandbox Flatpak uses;
- where bwrap is missing, `unshare --mount` (util-linux) with read-only bind mounts into a new root and
  `chroot` (written here because util-linux has no one-line equivalent of bwrap).

Where neither works (macOS, a locked-down container) the command runs unsealed with the limits below only,
and `isolation()` says so in the grader's header. `--sandbox` / COURSE_SANDBOX picks one by name.

Limits (`run`): the resident memory of the command and all its descendants is summed every 0.2 s; over
the limit, everything is killed; past the time limit, too. Both are reported.

`python -m course_utils.grading.sandbox kernel -f CONNECTION_FILE` is a Jupyter kernel sealed this way in the
folder it is started in (the notebook's folder: nbclient, nbgrader and the course's grader start kernels
there). The course's grader uses it for every submission; `install-kernel` writes its kernelspec so that
nbgrader's autograde runs each notebook in it (README).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import psutil

OK, TIMED_OUT, OUT_OF_MEMORY, ORPHANED = "ok", "timed out", "out of memory", "orphaned"
BWRAP, UNSHARE, NONE = "bubblewrap", "unshare", "none"
HOME = "/home/student"  # the sealed command's home: an empty folder of its own
# What a sealed command keeps of the environment it is started with (nothing else: no tokens, no paths of
# the grader's). NBGRADER_* lets nbgrader's checks know they run under its autograder.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "TQDM_DISABLE", "COURSE_THREADS")


# The course package's folder, found without importing it: a sealed kernel's launcher runs this file as a script
# (`kernel_spec`), so each kernel does not pay for importing torch and the course twice.
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _system_paths() -> list[str]:
    """What a sealed command may read: the system, this Python and its environment, the course package."""
    paths = {os.path.abspath(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
                                          sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
                                          PACKAGE)}
    return sorted(p for p in paths if os.path.exists(p) and not any(p.startswith(q + os.sep) for q in paths))


def readable() -> list[str]:
    """The folders a sealed command sees read-only (besides /proc, /dev, an empty /tmp and home)."""
    return _system_paths()


def _bwrap_argv(writable, cwd, network) -> list[str]:
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try"]
    if not network:
        argv.append("--unshare-net")
    # the empty folders first: a readable or writable folder may lie inside /tmp (an environment in /tmp/course/.venv)
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp", "--tmpfs", HOME]
    for p in readable():
        argv += ["--ro-bind", p, p]
    for p in writable:
        argv += ["--bind", p, p]
    argv += ["--chdir", cwd or HOME]
    return argv


# The fallback: a new mount (and network, PID) namespace, a tmpfs root with read-only bind mounts of the
# readable folders and writable binds of the given ones, then chroot. Runs as the namespace's root.
_UNSHARE_SCRIPT = r"""
set -e
R=$(mktemp -d)
mount --make-rprivate /
mount -t tmpfs -o mode=0755 sandbox "$R"
ro() { if [ -d "$1" ]; then mkdir -p "$R$1"; else mkdir -p "$(dirname "$R$1")"; : > "$R$1"; fi
       mount --rbind "$1" "$R$1"; mount -o remount,bind,ro "$R$1"; }
rw() { mkdir -p "$R$1"; mount --bind "$1" "$R$1"; }
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R$HOME_DIR"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 dev "$R/dev"
for d in null zero full random urandom tty; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d" || true; done
mkdir -p "$R/dev/shm" && mount -t tmpfs shm "$R/dev/shm"
mount -t tmpfs tmp "$R/tmp"
mount -t tmpfs home "$R$HOME_DIR"
for p in $READABLE; do ro "$p"; done
for p in $WRITABLE; do rw "$p"; done
exec chroot "$R" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$WORKDIR" "$@"
"""


def _unshare_argv(writable, cwd, network) -> list[str]:
    argv = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--ipc", "--uts"]
    if not network:
        argv.append("--net")
    if os.getuid() != 0:
        argv.append("--map-root-user")
    env = {"READABLE": " ".join(shlex.quote(p) for p in readable()), "WRITABLE": " ".join(shlex.quote(p) for p in writable),
           "HOME_DIR": HOME, "WORKDIR": cwd or HOME}
    # the variables travel in the script itself (the command's own environment stays as the caller made it)
    preamble = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    return argv + ["/bin/sh", "-c", preamble + _UNSHARE_SCRIPT, "sandbox"]


def _works(argv) -> tuple[bool, str]:
    """Does this way of sealing work here: the given folder writable, a folder beside it invisible?"""
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as hidden:
        open(os.path.join(hidden, "secret"), "w").close()
        probe = argv(writable=[d], cwd=d, network=False) + [
            "/bin/sh", "-c", f"echo ok > probe && test ! -e {shlex.quote(hidden)}/secret"]
        try:
            r = subprocess.run(probe, capture_output=True, timeout=30, text=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, str(e)
        ok = r.returncode == 0 and os.path.exists(os.path.join(d, "probe"))
        return ok, (r.stderr.strip().splitlines() or ["exit status %d" % r.returncode])[-1]


@functools.lru_cache(maxsize=None)
def backend(prefer: str | None = None) -> tuple[str, str]:
    """(name, what it gives) of the sandbox this machine has: bubblewrap, unshare or none.
    prefer (or COURSE_SANDBOX): try that one only."""
    prefer = prefer or os.environ.get("COURSE_SANDBOX") or None
    sealed = "files sealed (system, environment and package read-only; only its own copy writable), " \
             "no network, own PID namespace"
    reasons = []
    if sys.platform.startswith("linux"):
        for name, argv, tool in ((BWRAP, _bwrap_argv, "bwrap"), (UNSHARE, _unshare_argv, "unshare")):
            if prefer and prefer != name:
                continue
            if not shutil.which(tool):
                reasons.append(f"no `{tool}` command")
                continue
            ok, why = _works(argv)
            if ok:
                return name, f"{name}: {sealed}"
            reasons.append(f"{tool} failed ({why})")
    else:
        reasons.append(f"{sys.platform} has no Linux namespaces")
    return NONE, ("NOT SEALED: a submission can read and write what your user can, and reach the network "
                  f"({'; '.join(reasons)}); install bubblewrap or grade in a Linux container")


def isolation() -> str:
    """What this machine's sandbox gives, in words (the grader prints it in its header)."""
    return backend()[1]


def sealed(cmd, writable=(), cwd=None, network=False) -> list[str]:
    """`cmd` (a list) wrapped to run sealed: readable() read-only, `writable` folders writable, working in
    `cwd` (one of them). Unchanged where this machine has no sandbox (see `isolation`)."""
    writable = [os.path.abspath(p) for p in writable]
    name = backend()[0]
    if name == BWRAP:
        return _bwrap_argv(writable, cwd and os.path.abspath(cwd), network) + list(cmd)
    if name == UNSHARE:
        return _unshare_argv(writable, cwd and os.path.abspath(cwd), network) + list(cmd)
    return list(cmd)


def clean_env(env=None) -> dict:
    """The environment a sealed command gets: a few harmless variables of `env` (or os.environ), its own home."""
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if k in _KEEP_ENV or k.startswith("NBGRADER_")}
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    out.update(HOME=HOME, MPLCONFIGDIR=f"{HOME}/.matplotlib", JUPYTER_RUNTIME_DIR=f"{HOME}/.jupyter-runtime")
    return out


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
        os.killpg(popen.pid, signal.SIGKILL)  # the sandbox's first process: the namespace's processes die with it
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:  # without namespaces: everything that was seen in the tree
        try:
            p.kill()
        except psutil.Error:
            pass


def run(cmd, stdin: str = "", timeout: float = 600, memory: int | None = None, env=None, cwd=None,
        isolate: bool = True, writable=(), capture: bool = True, parent: int | None = None) -> Result:
    """Run `cmd` (a list), sealed when `isolate` (`sealed`, with `writable` folders and working in `cwd`),
    with `stdin` as its input; kill it and all it started at `timeout` seconds or when their memory passes
    `memory` bytes (or when process `parent` is no longer this one's parent: it died). Returns what it printed
    (capture=False: passes the output through) and how it ended."""
    if isolate:
        cmd, env = sealed(cmd, writable, cwd), clean_env(env)
    if shutil.which("setpriv"):  # util-linux: SIGKILL if whoever started the sandbox dies, kept across exec
        cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + list(cmd)
    t0 = time.monotonic()
    pipe = subprocess.PIPE if capture else None
    popen = subprocess.Popen(list(cmd), stdin=subprocess.PIPE, stdout=pipe, stderr=pipe, text=True, env=env,
                             cwd=cwd, start_new_session=True)
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
        elif parent and os.getppid() != parent:  # orphaned: e.g. a Dask worker killed mid-notebook
            status = ORPHANED
        if status != OK:
            _kill(popen, list(seen.values()))
            reader.join(30)
            break
    _kill(popen, [p for p in seen.values() if p.is_running()])  # nothing it started outlives it
    return Result(status, popen.returncode, outputs.get("out") or "", outputs.get("err") or "",
                  time.monotonic() - t0, peak)


# ---------------------------------------------------------------- a sealed Jupyter kernel

PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def result_path(connection_file) -> str:
    """Where `kernel` writes how the sealed kernel ended (status, seconds, peak memory): beside the connection
    file, written after the kernel is gone, so the kernel cannot forge it."""
    return os.path.splitext(connection_file)[0] + ".sandbox.json"


def kernel(connection_file, timeout=3600.0, memory=None, parent=None):
    """Run an IPython kernel sealed in the current folder (which it may write) and talk to it through the
    Unix sockets named in `connection_file` (transport "ipc": a sealed kernel has no network, not even the
    grader's loopback). The kernel gets a private copy of the connection file in a folder of its own, and the
    sockets where the client looks are links into it, so it sees no other kernel's key or sockets.
    The kernel dies with process `parent` (default: the one that started this), e.g. a Dask worker killed
    mid-notebook: passed from the spec, as the worker may die before this process has read its parent."""
    with open(connection_file) as f:
        info = json.load(f)
    if info.get("transport") != "ipc":
        raise SystemExit("a sealed kernel talks over Unix sockets: start it with transport 'ipc' "
                         "(nbgrader: --KernelManager.transport=ipc)")
    client_ip = info["ip"]
    if not os.path.isabs(client_ip):  # jupyter_client's default "kernel-ipc" is relative to the client's folder
        client_ip = os.path.join(os.readlink(f"/proc/{os.getppid()}/cwd"), client_ip)
    private = tempfile.mkdtemp(prefix="sealed-kernel-")
    os.chmod(private, 0o700)
    links = []
    try:
        own = dict(info, ip=os.path.join(private, "k"))
        own_file = os.path.join(private, "connection.json")
        with open(own_file, "w") as f:
            json.dump(own, f)
        for port in PORTS:
            link = f"{client_ip}-{info[port]}"
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(f"{own['ip']}-{info[port]}", link)
            links.append(link)
        cwd = os.getcwd()
        r = run([sys.executable, "-m", "ipykernel_launcher", "-f", own_file], timeout=timeout, memory=memory,
                cwd=cwd, writable=[cwd, private], capture=False, parent=parent or os.getppid())
        with open(result_path(connection_file), "w") as f:
            json.dump({"status": r.status, "returncode": r.returncode, "seconds": r.seconds,
                       "peak_memory": r.peak_memory, "isolation": isolation()}, f)
        return r
    finally:
        for link in links:
            if os.path.lexists(link):
                os.remove(link)
        shutil.rmtree(private, ignore_errors=True)


def kernel_spec(timeout=3600.0, memory=None, display_name="Python 3 (sealed)", parent=None) -> dict:
    """The kernel.json of a sealed kernel with these limits (interrupts travel as messages: a signal to the
    sandbox's outer process would not reach the kernel)."""
    # this file as a script (-P: its folder is not put on sys.path), not `-m course_utils.grading.sandbox`: that
    # would import the course and torch (about 3 s and 0.5 GB) in every launcher, beside the kernel's own import
    argv = [sys.executable, "-P", os.path.abspath(__file__), "kernel", "-f", "{connection_file}", "--timeout", str(timeout)]
    if memory:
        argv += ["--memory", str(int(memory))]
    if parent:
        argv += ["--parent", str(int(parent))]
    return {"argv": argv, "display_name": display_name, "language": "python", "interrupt_mode": "message",
            "metadata": {"debugger": False}}


def install_kernel(folder, name="course-sealed", timeout=3600.0, memory=None, parent=None) -> str:
    """Write the sealed kernel's spec to FOLDER/kernels/NAME/kernel.json (a Jupyter data folder: put it on
    JUPYTER_PATH, or use ~/.local/share/jupyter); returns the spec's folder."""
    path = os.path.join(folder, "kernels", name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "kernel.json"), "w") as f:
        json.dump(kernel_spec(timeout, memory, parent=parent), f, indent=1)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_utils.grading.sandbox", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="say which sandbox this machine has")
    k = sub.add_parser("kernel", help="a sealed IPython kernel in the current folder (for a kernelspec)")
    k.add_argument("-f", dest="connection_file", required=True)
    k.add_argument("--timeout", type=float, default=3600.0)
    k.add_argument("--memory", type=int, default=None)
    k.add_argument("--parent", type=int, default=None, help="die with this process (default: the one that started this)")
    i = sub.add_parser("install-kernel", help="write the sealed kernel's kernelspec (for nbgrader)")
    i.add_argument("folder", help="a Jupyter data folder, e.g. ~/.local/share/jupyter or one on JUPYTER_PATH")
    i.add_argument("--name", default="course-sealed")
    i.add_argument("--timeout", type=float, default=3600.0, help="seconds one notebook's kernel may live")
    i.add_argument("--memory", type=float, default=6.0, help="GiB one notebook may use (default 6)")
    args = p.parse_args(argv)
    if args.cmd == "check":
        print(isolation())
        return 0 if backend()[0] != NONE else 1
    if args.cmd == "install-kernel":
        print(install_kernel(os.path.expanduser(args.folder), args.name, args.timeout, int(args.memory * 2**30)))
        return 0
    r = kernel(args.connection_file, args.timeout, args.memory, args.parent)
    return 0 if r.status == OK and r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
