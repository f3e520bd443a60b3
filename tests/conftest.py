"""Test set-up: no network, a non-interactive matplotlib, an empty torch cache."""
import ipaddress
import os
import socket

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _is_local(host):
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _is_local(address[0]):
        return _real_connect(self, address)
    raise OSError(f"network access is blocked in the tests (tried {address})")


def _guarded_getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if not _is_local(host):
        raise socket.gaierror(f"network access is blocked in the tests (looked up {host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Every test runs offline: connections beyond loopback fail at once."""
    socket.socket.connect = _guarded_connect
    socket.getaddrinfo = _guarded_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.getaddrinfo = _real_getaddrinfo


THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@pytest.fixture(autouse=True, scope="module")
def threads_kept():
    """No test module leaves the thread settings changed: every kernel the rest of the run starts (nbval's,
    nbclient's) inherits them, and one thread instead of two made the whole of `make test` half as fast."""
    before = {k: os.environ.get(k) for k in THREADS}
    yield
    after = {k: os.environ.get(k) for k in THREADS}
    assert after == before, f"this test module changed the environment's thread settings: {before} -> {after}"


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same global torch seed, whichever tests ran before it."""
    import torch

    torch.manual_seed(0)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torchvision weights cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture(scope="session")
def model():
    from course_utils import load_model

    return load_model()


# Notebooks under tests/data are inputs of tests/test_nbconvert.py (one of them hangs nbclient on purpose),
# not course notebooks for nbval to collect.
collect_ignore_glob = ["data/*.ipynb"]
