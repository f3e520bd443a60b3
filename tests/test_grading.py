"""The student's side of grading: the instant check, and the plain-data answers the grader asks for."""
import json
import math

import numpy as np
import pytest
import torch

from course_utils import grading
from course_utils.grading import (FAILED, NOT_ATTEMPTED, PASSED, Case, ExerciseFailed, answers, check, compare,
                                  exercises, register, run_cases)
from course_utils.grading.plain_data import fingerprint, from_plain, to_plain


def _square(x):
    return x * x


register("test.square", _square, lambda rng: [Case(f"n={n}", (torch.from_numpy(rng.normal(size=n)),)) for n in (3, 5)]
         + [Case("a string is an error", ("no",))])


def test_compare():
    assert compare(torch.ones(3), np.ones(3)) is None
    assert "shape" in compare(torch.ones(3), torch.ones(4))
    msg = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert "1 of 2 values differ" in msg and "index (1,)" in msg and "2.5" in msg
    assert compare(1.0, 1.0 + 1e-9) is None and "expected 1" in compare(1.0, 1.1)
    assert compare((torch.ones(2), torch.tensor([1, 2])), (torch.ones(2), torch.tensor([1, 2]))) is None
    assert "[1]" in compare((torch.ones(2), torch.tensor([1, 2])), (torch.ones(2), torch.tensor([2, 1])))
    assert "length" in compare([1, 2], [1])
    assert "number" in compare(1.0, "one")


def test_check_passes_a_right_answer(capsys):
    assert check("test.square", lambda x: x ** 2).status == PASSED
    assert "passed all 3 cases" in capsys.readouterr().out


def test_check_fails_a_wrong_answer_naming_the_case(capsys):
    with pytest.raises(ExerciseFailed) as e:
        check("test.square", lambda x: x * 2)
    assert "Case 1 of 3 (n=3)" in str(e.value) and "expected" in str(e.value)
    # in Jupyter the failure shows as its message, not a traceback
    assert any("Case 1 of 3" in line for line in e.value._render_traceback_())


def _stub(*args, **kwargs):
    raise NotImplementedError()


def test_not_attempted_prints_for_the_student_and_raises_under_nbgrader(capsys, monkeypatch):
    monkeypatch.delenv(grading.NBGRADER_ENV, raising=False)
    assert check("test.square", _stub).status == NOT_ATTEMPTED and "not attempted" in capsys.readouterr().out
    # nbgrader gives a test cell its points unless the cell raises
    monkeypatch.setenv(grading.NBGRADER_ENV, "autograde")
    with pytest.raises(ExerciseFailed, match="not attempted"):
        check("test.square", _stub)


def test_errors_must_match_the_reference():
    # the reference raises TypeError on a string; a student raising TypeError too is right
    def careful(x):
        if isinstance(x, str):
            raise TypeError("no strings")
        return x * x

    assert check("test.square", careful)
    with pytest.raises(ExerciseFailed, match="raised KeyError"):
        check("test.square", lambda x: {}["boom"])


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="00.top_k"):
        check("00.topk", lambda x: x)


# ---------------------------------------------------------------- plain data

@pytest.mark.parametrize("value", [
    torch.arange(6.0).view(2, 3), torch.tensor([1, 2], dtype=torch.int64), torch.tensor([True, False]),
    np.linspace(0, 1, 5), np.array([[1, 2]], dtype=np.int32), 3, 2.5, "text", None, True,
    (torch.ones(2), 3), [1.0, (2, "a")], {"a": torch.zeros(1), 3: [1]}, torch.topk(torch.tensor([3.0, 1.0, 2.0]), 2),
    torch.tensor(1.5), torch.ones(2, dtype=torch.bfloat16),
])
def test_to_plain_round_trips_through_json(value):
    back = from_plain(json.loads(json.dumps(to_plain(value))))
    assert compare(value if not torch.is_tensor(value) or value.dtype != torch.bfloat16 else value.float(), back) is None
    if torch.is_tensor(value):
        assert torch.is_tensor(back)
    if isinstance(value, np.ndarray):
        assert isinstance(back, np.ndarray) and back.dtype == value.dtype


def test_to_plain_keeps_nan_and_inf_and_refuses_objects():
    back = from_plain(json.loads(json.dumps(to_plain([math.nan, math.inf, -math.inf]))))
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf
    opaque = from_plain(json.loads(json.dumps(to_plain(object()))))
    assert opaque != opaque and "object" in repr(opaque)  # an object is never equal to an answer
    assert compare(torch.ones(1), opaque) is not None
    # a forged array of an unknown dtype is refused, not unpickled
    assert "dtype" in repr(from_plain({"__array__": "ndarray", "dtype": "object", "shape": [1], "data": ""}))


def test_fingerprint_sees_every_number_including_module_weights():
    a = (torch.ones(3), {"k": 2})
    assert fingerprint(a) == fingerprint((torch.ones(3), {"k": 2}))
    assert fingerprint(a) != fingerprint((torch.ones(3), {"k": 3}))
    m1, m2 = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        m2.weight.copy_(m1.weight)
        m2.bias.copy_(m1.bias)
    assert fingerprint(m1) == fingerprint(m2)
    with torch.no_grad():
        m2.bias[0] += 1e-3
    assert fingerprint(m1) != fingerprint(m2)


def test_answers_are_plain_data_from_the_graders_own_code():
    ex = exercises()["00.top_k"]

    def own(logits, k=5):
        if k > logits.shape[-1]:
            raise ValueError("k too large")
        return torch.softmax(logits, -1).sort(descending=True)[0][:k], logits.argsort(descending=True)[:k]

    theirs = answers("00.top_k", own, seed=3)
    json.dumps(theirs)  # plain data only
    assert len(theirs["cases"]) == len(ex.cases(np.random.default_rng(3)))
    assert theirs["cases"][-1]["raised"][:2] == ["ValueError", "Exception"]
    assert compare(ex.reference(*ex.cases(np.random.default_rng(3))[0].args),
                   from_plain(theirs["cases"][0]["value"])) is None
    assert answers("00.top_k", None, seed=3)["missing"]
    assert answers("00.top_k", _stub, seed=3)["cases"][0]["not_attempted"]


@pytest.mark.parametrize("ex_id", sorted(i for i in exercises() if not i.startswith("test.")))
def test_cases_depend_on_the_seed_only(ex_id):
    """The grader draws the cases in its process and in the kernel: they must agree whatever the kernel did before."""
    ex = exercises()[ex_id]
    torch.manual_seed(1)
    first = fingerprint([(c.args, c.kwargs) for c in ex.cases(np.random.default_rng(11))])
    torch.manual_seed(2)
    torch.rand(100)
    second = fingerprint([(c.args, c.kwargs) for c in ex.cases(np.random.default_rng(11))])
    assert first == second
    state = torch.get_rng_state()
    ex.cases(np.random.default_rng(11))
    assert torch.equal(state, torch.get_rng_state()), "drawing the cases moved torch's global generator"
    assert first != fingerprint([(c.args, c.kwargs) for c in ex.cases(np.random.default_rng(12))])


@pytest.mark.parametrize("ex_id", sorted(i for i in exercises() if not i.startswith("test.")))
def test_every_exercise_draws_cases_for_any_seed(ex_id):
    ex = exercises()[ex_id]
    assert all(len(grading.draw_cases(ex, seed)) >= 3 for seed in (0, 1, 2**31 - 1))


register("test.empty", _square, lambda rng: [])


def test_an_exercise_without_cases_fails_loudly_never_passes(tmp_path):
    """'passed all 0 cases' would give every answer the point: the check, the kernel's answers and the grader
    all raise instead, and a grading run stops before it runs a submission."""
    from course_utils.grading import classroom, notebooks, verdicts

    with pytest.raises(grading.ExerciseDefect, match="no cases"):
        check("test.empty", _square)
    with pytest.raises(grading.ExerciseDefect):
        answers("test.empty", _square, seed=1)
    with pytest.raises(grading.ExerciseDefect):
        verdicts.judge("test.empty", 1, {"cases": []})
    source = notebooks.nbgrader_metadata({"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "def f(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "check('test.empty', f)"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "hw.ipynb").write_text(json.dumps(source))
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "hw.ipynb").write_text(json.dumps(source))
    with pytest.raises(grading.ExerciseDefect):
        classroom.grade(str(tmp_path / "subs"), str(tmp_path / "source"), str(tmp_path / "grades.csv"))
    assert not (tmp_path / "grades.csv").exists()


def _descend(target, steps=20, lr=0.2):
    """Gradient descent on ||x - target||^2 from zeros: the toy 'optimization loop' of test.descend."""
    x = torch.zeros_like(target)
    for _ in range(steps):
        x = (x - lr * 2 * (x - target)).clamp(0, 1)
    return x


register("test.descend", _descend, lambda rng: [Case("a target in [0, 1]", (torch.from_numpy(rng.uniform(0, 1, 6)),))],
         behaviour=grading.reaches(lambda case, x: -float((torch.as_tensor(x) - case.args[0]).pow(2).sum()),
                                   lambda case: torch.zeros_like(case.args[0]), share=0.8))


def test_a_behaviour_check_judges_what_a_loop_reaches_by_hand():
    ex = exercises()["test.descend"]
    target = ex.cases(np.random.default_rng(0))[0].args[0]
    # the reference ends within (1 - 0.4)^20 of the target: f = -|target|^2 (0.6^20)^2 ~ 0. One step of 0.4 reaches
    # f = -0.36 |target|^2, 64% of the way: below the 80% needed. Another optimizer that gets there passes.
    assert run_cases(ex, _descend).status == PASSED
    assert run_cases(ex, lambda t: _descend(t, steps=200, lr=0.05)).status == PASSED
    assert run_cases(ex, lambda t: t.clone()).status == PASSED  # the optimum itself is a right answer
    one = run_cases(ex, lambda t: _descend(t, steps=1))
    assert one.status == FAILED and "the reference reaches" in one.message
    f0 = -float(target.pow(2).sum())
    assert f"went from {f0:.4g}" in one.message and f"to {0.36 * f0:.4g}" in one.message
    assert "within [0, 1]" in run_cases(ex, lambda t: 2 * t).message
    assert "shape" in run_cases(ex, lambda t: t[:3]).message
    assert "NaN" in run_cases(ex, lambda t: t * float("nan")).message
    assert "image tensor" in run_cases(ex, lambda t: "done").message


def test_the_grader_judges_behaviour_in_its_own_process():
    from course_utils.grading.verdicts import judge

    right, one_step = answers("test.descend", _descend, seed=4), answers("test.descend", lambda t: _descend(t, 1), seed=4)
    assert judge("test.descend", 4, right)[0] == PASSED
    status, message, _ = judge("test.descend", 4, one_step)
    assert status == FAILED and "the reference reaches" in message
