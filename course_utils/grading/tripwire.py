"""The grader's tripwire: while a kernel computes a student's answers to an exercise, the course's own
implementation of that exercise is switched off, however the student's code reaches it.

The grader (`course_utils.grading.submission`) sends the kernel two kinds of code of its own:

1. `install(exercise_ids)`, run before the first cell of the submission, rebuilds the code of every
   function that implements one of those exercises (`Exercise.implementations`) from its source, with a
   first statement that calls a tripwire held as a constant of the code object. The function objects stay
   the same objects, and their old code is gone: a reference taken before, fetched later through
   `getattr`, `importlib` or a module's `__dict__`, or rebuilt from its `__code__`, runs the new code.
2. `ANSWERS`, the code that runs the student's function on the cases the grader draws, compiled with the
   file name `MARK.format(exercise_id)`. While any thread of the kernel has a frame of that code on its
   stack (a forked child has a copy of the stack), the tripwire raises `ReferenceSwitchedOff`.

So a submission that calls the course's implementation while it is asked for answers gets an error, never
the right value; the grader judges the value in its own process, so hiding the error does not help, and it
recognizes the error's name in the answers and flags the row. Outside the answers (the notebook's own
cells, the in-notebook `check`) everything behaves as the course does.

An audit hook (PEP 578: it cannot be removed) keeps a fresh, unguarded copy out of reach: after `install`
the package's source and bytecode cannot be read, its module code cannot run again, no code object can be
made or changed, no other program can start (a clean interpreter would import an unguarded copy), and
during the answers ctypes is off.

What this cannot see (README): code that edits the interpreter's memory with ctypes before the answers, or
a copy of the course's source pasted into the notebook; the static flags name the first, and the similarity
report compares every solution with the course's source.
"""
from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import linecache
import pkgutil
import sys
import textwrap
import warnings

import course_utils

from .registry import exercise

MARK = "<course-grader-answers {}>"
_PLACEHOLDER = "__course_tripwire__"


class ReferenceSwitchedOff(RuntimeError):
    """The course's implementation was called while the grader asked for the student's own answers."""


def _tripwire(exercise_ids, what):
    """The check at the top of a guarded function. Everything it uses is bound here, not looked up in a
    module a notebook could change."""
    marks = frozenset(MARK.format(i) for i in exercise_ids)
    frames, answering, error = sys._current_frames, _answering, ReferenceSwitchedOff
    message = (f"{what} is the course's own implementation of {', '.join(sorted(exercise_ids))}; the grader "
               "switches it off while it asks for your answers: write the function yourself")

    def tripwire():
        if answering(frames, marks):
            raise error(message)

    return tripwire


def guarded_code(fn, tripwire):
    """fn's code, recompiled from its source with a first statement that calls `tripwire` (a constant of the
    code object: neither a global nor a default the notebook could rebind)."""
    lines, start = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        raise TypeError(f"{fn.__qualname__} is not a plain function defined with def")
    docstring = isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant)
    node.body.insert(1 if docstring else 0, ast.parse(f"{_PLACEHOLDER!r}()").body[0])
    ast.increment_lineno(tree, start - 1)
    future = fn.__globals__.get("annotations")
    flags = __future__.annotations.compiler_flag if future is __future__.annotations else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # "'str' object is not callable": it is replaced below
        module = compile(tree, inspect.getsourcefile(fn), "exec", flags=flags, dont_inherit=True)
    scope = {}
    exec(module, fn.__globals__, scope)  # noqa: S102 - the course's own source; defaults evaluated in its module
    code = scope[fn.__name__].__code__
    return code.replace(co_consts=tuple(tripwire if c == _PLACEHOLDER else c for c in code.co_consts))


# Programs a notebook may start after the tripwire is armed: matplotlib asks fontconfig for the fonts.
ALLOWED_PROGRAMS = frozenset({"fc-list"})


def _answering(frames, marks):
    for frame in frames().values():
        while frame is not None:
            if frame.f_code.co_filename in marks:
                return True
            frame = frame.f_back
    return False


def _audit_hook(package, guarded, marks):
    """An audit hook (PEP 578: once added, no code in the process can remove it) that keeps a fresh,
    unguarded copy of the course out of reach after `install`:
    - the package's .py and .pyc files cannot be opened (no source to compile, no bytecode to unmarshal);
    - no code of the package runs a second time (reload, exec of a module file), no code object is made
      or changed (`code.replace`: bytecode surgery), and a guarded function keeps its code;
    - no other program starts (a clean interpreter would import an unguarded copy), except ALLOWED_PROGRAMS;
    - while answers are asked, ctypes is off.
    """
    import os

    realpath, sep, frames = os.path.realpath, os.sep, sys._current_frames
    root = realpath(package) + sep
    spawn = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile", "subprocess.Popen"}

    def refuse(what):
        raise PermissionError(f"the grader's kernel does not allow {what} (course_utils.grading.tripwire)")

    def hook(event, args):
        if event == "open":
            path = args[0]
            if isinstance(path, (str, bytes)) and not isinstance(path, bool):
                path = path.decode(errors="replace") if isinstance(path, bytes) else path
                if path.endswith((".py", ".pyc")) and realpath(path).startswith(root):
                    refuse("reading the course's source or bytecode")
        elif event == "code.__new__":
            refuse("making or changing code objects")
        elif event == "object.__setattr__" and args[1] == "__code__" and args[0] in guarded:
            refuse("changing the code of the course's implementation")
        elif event == "exec" and getattr(args[0], "co_filename", "").startswith(root):
            refuse("running the course's module code a second time")
        elif event in spawn:
            program = os.path.basename(str(args[0] if args else ""))
            if event != "subprocess.Popen" or program not in ALLOWED_PROGRAMS:
                refuse(f"starting another program ({event} {program})")
        elif event.startswith("ctypes.") and _answering(frames, marks):
            refuse("ctypes while it asks for answers")

    return hook


def install(exercise_ids) -> list[str]:
    """Arm the tripwire in this process: guard the implementations of these exercises and add the audit hook
    (the grader runs this in a fresh kernel before the submission's first cell; it cannot be undone).
    Every module of the package is imported first, so none needs its files later. Returns what was guarded."""
    for mod in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        if not mod.name.endswith(".__main__"):  # a command line, not a module to import
            importlib.import_module(mod.name)
    owners: dict = {}
    for ex_id in exercise_ids:
        for fn in exercise(ex_id).implementations:
            owners.setdefault(fn, []).append(ex_id)
    done = []
    for fn, ids in owners.items():
        what = f"{fn.__module__}.{fn.__qualname__}"
        fn.__code__ = guarded_code(fn, _tripwire(ids, what))
        done.append(what)
    marks = frozenset(MARK.format(i) for i in exercise_ids)
    linecache.clearcache()  # the source lines read above (and by earlier tracebacks) leave memory
    sys.addaudithook(_audit_hook(course_utils.__path__[0], frozenset(owners), marks))
    return sorted(done)


# The code the grader sends to ask for one exercise's answers. It runs in the notebook's namespace, compiled
# with the file name MARK.format(exercise id), followed by the call that `answers_cell` writes.
ANSWERS = """
def _course_answers_(exercise_id, function_name, seed, token):
    import copy, json
    from course_utils.grading.registry import draw_cases, exercise
    from course_utils.grading.plain_data import fingerprint, to_plain

    fn = globals().get(function_name)
    if not callable(fn):
        return print(token + json.dumps({"missing": True, "cases": []}), flush=True)
    out = []
    for case in draw_cases(exercise(exercise_id), seed):
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        entry = {"inputs": fingerprint((args, kwargs))}
        try:
            entry["value"] = to_plain(fn(*args, **kwargs))
        except NotImplementedError:
            entry["not_attempted"] = True
        except Exception as e:  # the student's error is data for the grader
            entry.update(raised=[c.__name__ for c in type(e).__mro__], message=str(e)[:300])
        out.append(entry)
        if entry.get("not_attempted"):
            break
    print(token + json.dumps({"cases": out}), flush=True)
"""


def answers_cell(exercise_id, function_name, seed, token) -> str:
    """A cell that asks for one exercise's answers: ANSWERS compiled under the exercise's mark, then called."""
    code = ANSWERS + (f"\n_course_answers_({exercise_id!r}, {function_name!r}, {int(seed)!r}, {token!r})\n"
                      "del _course_answers_\n")
    return f"exec(compile({code!r}, {MARK.format(exercise_id)!r}, 'exec'))"
