"""The grader's tripwire: a submission cannot reach an undisturbed reference while its answers are asked.

Each disguise runs in a fresh interpreter (the tripwire changes the process for good), armed as the grader
arms a kernel: `tripwire.install` first, then the "notebook" prepares its way to the reference, then the
grader's own answer code asks for the answers (`grading.answers` runs that same code here). A disguise
wins if any case comes back with the right value.
"""
import json
import subprocess
import sys
import textwrap

import pytest

PREPARE = {
    # the disguises
    "by name": "def top_k(logits, k=5):\n    return labels.top_k(logits, k)",
    "captured before": "early = labels.top_k\ndef top_k(logits, k=5):\n    return early(logits, k)",
    "importlib and getattr": "import importlib\n"
                             "m = importlib.import_module('course_utils.' + 'lab' + 'els')\n"
                             "top_k = getattr(m, 'top' + '_k')",
    "module __dict__": "def top_k(logits, k=5):\n    return vars(sys.modules['course_utils.labels'])['top_k'](logits, k)",
    "rebuilt from its code object": "import types\n"
                                    "top_k = types.FunctionType(labels.top_k.__code__, labels.__dict__, 'top_k', (5,))",
    "the exercise registry": "from course_utils import grading\ntop_k = grading.exercises()['00.top_k'].reference",
    "answers replaced in the module": "import course_utils.grading as g\n"
                                      "vars(sys.modules['course_utils.grading'])['answers'] = lambda *a, **k: {}\n"
                                      "top_k = labels.top_k",
    # and others
    "another thread": "import threading\n"
                      "def top_k(logits, k=5):\n"
                      "    out = {}\n"
                      "    def run():\n"
                      "        try:\n"
                      "            out['v'] = labels.top_k(logits, k)\n"
                      "        except Exception as e:\n"
                      "            out['e'] = e\n"
                      "    t = threading.Thread(target=run); t.start(); t.join()\n"
                      "    if 'e' in out:\n"
                      "        raise out['e']\n"
                      "    return out['v']",
    "a forked child": "import os, pickle\n"
                      "def top_k(logits, k=5):\n"
                      "    r, w = os.pipe()\n"
                      "    if os.fork() == 0:\n"
                      "        try:\n"
                      "            data = pickle.dumps(labels.top_k(logits, k))\n"
                      "        except Exception as e:\n"
                      "            data = pickle.dumps(e)\n"
                      "        os.write(w, data); os._exit(0)\n"
                      "    os.close(w)\n"
                      "    out = pickle.loads(os.read(r, 1 << 20)); os.wait()\n"
                      "    if isinstance(out, Exception):\n"
                      "        raise out\n"
                      "    return out",
    "a fresh import": "del sys.modules['course_utils.labels']\nimport course_utils.labels as fresh\ntop_k = fresh.top_k",
    "importlib.reload": "import importlib\nfresh = importlib.reload(labels)\ntop_k = fresh.top_k",
    "the module file, loaded by hand": "import importlib.util\n"
                                       "spec = importlib.util.spec_from_file_location('copy_of_labels', labels.__file__)\n"
                                       "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                                       "top_k = m.top_k",
    "the source, compiled": "import inspect\nns = {}\n"
                            "exec(compile(inspect.getsource(labels), 'mine.py', 'exec'), ns)\ntop_k = ns['top_k']",
    "the source, read as text": "ns = {}\nexec(compile(open(labels.__file__).read(), 'mine.py', 'exec'), ns)\n"
                                "top_k = ns['top_k']",
    "the bytecode, unmarshalled": "import importlib.util, marshal\n"
                                  "data = open(importlib.util.cache_from_source(labels.__file__), 'rb').read()\n"
                                  "ns = {}\nexec(marshal.loads(data[16:]), ns)\ntop_k = ns['top_k']",
    "the tripwire cut out of the code": "import types\n"
                                        "c = labels.top_k.__code__\n"
                                        "c2 = c.replace(co_consts=tuple(None if callable(x) else x for x in c.co_consts))\n"
                                        "top_k = types.FunctionType(c2, labels.__dict__)",
    "the code swapped back": "def mine(logits, k=5):\n    return None\n"
                             "labels.top_k.__code__ = mine.__code__\ntop_k = labels.top_k",
    "a clean interpreter": "import subprocess, json as _j\n"
                           "def top_k(logits, k=5):\n"
                           "    code = ('import json, torch; from course_utils.labels import top_k; '\n"
                           "            f'p, i = top_k(torch.tensor({logits.tolist()}), {k}); print(json.dumps([p.tolist(), i.tolist()]))')\n"
                           "    p, i = _j.loads(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,\n"
                           "                                   env={}).stdout)\n"
                           "    return torch.tensor(p), torch.tensor(i)",
    "ctypes during the answers": "import ctypes\n"
                                 "def top_k(logits, k=5):\n"
                                 "    ctypes.pythonapi.Py_IncRef(ctypes.py_object(labels.top_k))\n"
                                 "    return labels.top_k(logits, k)",
}

SCRIPT = """
import json, sys, torch
from course_utils.grading import tripwire
tripwire.install(["00.top_k"])
import course_utils.labels as labels
import course_utils.grading as _g
ANSWERS = _g.answers
prepared = None
try:
{prepare}
except Exception as e:
    prepared = f"{{type(e).__name__}}: {{e}}"
from course_utils.grading.verdicts import judge
if prepared is None:
    verdict = judge("00.top_k", 11, ANSWERS("00.top_k", top_k, 11))
else:
    verdict = ("refused while preparing", prepared, [])
p, i = labels.top_k(torch.tensor([1.0, 3.0, 2.0]), 2)  # outside the answers the course works as before
print("@@" + json.dumps({{"verdict": verdict, "after": i.tolist()}}))
"""


def _run(prepare):
    code = SCRIPT.format(prepare=textwrap.indent(prepare, "    "))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = next((s for s in r.stdout.splitlines() if s.startswith("@@")), None)
    assert line, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads(line[2:])


@pytest.mark.parametrize("name", list(PREPARE))
def test_no_disguise_reaches_an_undisturbed_reference(name):
    out = _run(PREPARE[name])
    status, message, flags = out["verdict"]
    assert status != "passed", f"{name}: {message}"
    assert out["after"] == [1, 2]


def test_an_honest_answer_still_passes_and_the_course_still_runs():
    out = _run("def top_k(logits, k=5):\n"
               "    if k > logits.shape[-1]:\n"
               "        raise ValueError('k too large')\n"
               "    p = torch.softmax(logits, -1)\n"
               "    return torch.sort(p, descending=True)[0][:k], torch.argsort(p, descending=True)[:k]")
    assert out["verdict"][0] == "passed", out
    assert out["after"] == [1, 2]


def test_the_tripwire_is_what_the_grader_recognizes():
    from course_utils.grading import verdicts

    status, message, flags = _run(PREPARE["captured before"])["verdict"]
    assert (status, flags) == ("failed", [verdicts.CALLS_REFERENCE]) and "switches it off" in message
