"""Plain data between a student's kernel and the grader: numbers, strings, lists, dicts and arrays as JSON.

`to_plain` turns a function's result into JSON-able data (arrays as dtype, shape and raw bytes), and
`from_plain` turns it back; nothing that needs pickle is ever read. `fingerprint` hashes the numbers of
a case's inputs, so the grader can tell whether the kernel ran the function on the cases it drew.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math

import numpy as np
import torch

_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "complex64",
           "complex128"}


def to_plain(x, depth=0):
    """`x` as JSON-able plain data: numbers, strings, lists, dicts and arrays (dtype, shape, raw bytes).

    Nothing that needs pickle crosses from the student's kernel to the grader; an object of
    another type travels as its type name and a short repr, which never equals a right answer.
    """
    if depth > 20:
        return {"__object__": "nested too deep"}
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(x, np.bool_):
        return bool(x)
    if torch.is_tensor(x) or isinstance(x, np.ndarray):
        kind = "tensor" if torch.is_tensor(x) else "ndarray"
        a = x
        if torch.is_tensor(a):
            a = a.detach().cpu()
            a = (a.float() if a.dtype == torch.bfloat16 else a).resolve_conj().resolve_neg().numpy()
        a = np.array(a, order="C", copy=True)  # (ascontiguousarray would make a 0-d array 1-d)
        if a.dtype.name not in _DTYPES:
            return {"__object__": f"array of dtype {a.dtype}"}
        return {"__array__": kind, "dtype": a.dtype.name, "shape": list(a.shape),
                "data": base64.b64encode(a.tobytes()).decode()}
    if isinstance(x, dict):
        return {"__dict__": [[to_plain(k, depth + 1), to_plain(v, depth + 1)] for k, v in x.items()]}
    if isinstance(x, tuple):
        return {"__tuple__": [to_plain(v, depth + 1) for v in x]}
    if isinstance(x, list):
        return [to_plain(v, depth + 1) for v in x]
    return {"__object__": f"{type(x).__name__}: {repr(x)[:200]}"}


class _Opaque:
    """What the grader gets for an object that is not plain data: equal to nothing."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<{self.text}>"


def from_plain(p):
    """The inverse of `to_plain` (arrays come back as tensors or numpy arrays, as they left)."""
    if isinstance(p, list):
        return [from_plain(v) for v in p]
    if not isinstance(p, dict):
        return p
    if "__array__" in p:
        if p.get("dtype") not in _DTYPES:
            return _Opaque(f"array of dtype {p.get('dtype')!r}")
        a = np.frombuffer(base64.b64decode(p["data"]), dtype=p["dtype"]).reshape(tuple(p["shape"])).copy()
        return torch.from_numpy(a) if p["__array__"] == "tensor" else a
    if "__float__" in p:
        return float(p["__float__"])
    if "__tuple__" in p:
        return tuple(from_plain(v) for v in p["__tuple__"])
    if "__dict__" in p:
        return {_hashable(from_plain(k)): from_plain(v) for k, v in p["__dict__"]}
    return _Opaque(str(p.get("__object__", "unknown object")))


def _hashable(k):
    return k if isinstance(k, (str, int, float, bool, tuple, type(None))) else repr(k)


def fingerprint(x) -> str:
    """A hash of the numbers in `x` (tensors, arrays, numbers, strings, modules' parameters)."""
    h = hashlib.sha256()

    def walk(v, depth=0):
        if depth > 20:
            return
        if isinstance(v, torch.nn.Module):
            h.update(type(v).__name__.encode())
            for name, t in v.state_dict().items():
                h.update(name.encode())
                walk(t, depth + 1)
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for item in v:
                walk(item, depth + 1)
            h.update(b"]")
        elif isinstance(v, dict):
            for key in v:
                h.update(repr(key).encode())
                walk(v[key], depth + 1)
        elif torch.is_tensor(v) or isinstance(v, np.ndarray) or isinstance(v, (int, float, str, bool, type(None))):
            h.update(json.dumps(to_plain(v), sort_keys=True).encode())
        else:  # a function: its name
            h.update(getattr(v, "__qualname__", type(v).__name__).encode())

    walk(x)
    return h.hexdigest()[:16]
