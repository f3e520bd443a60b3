"""Every exercise's check against what students write: a right answer passes, each typical mistake fails.

The answers are in `mistakes.py`, written from the method, not from the reference. Each is run through the
notebook's `check` (in this process, the notebook's seed) and through the instructor's grader (`answers` as the
kernel gives them, `judge` as the grader's process judges them, with other seeds, as the grader draws a new
one each time). A mistake that passes either means the check needs a case that catches it.
"""
import numpy as np
import pytest

from course_utils.grading.verdicts import judge
from course_utils.grading import FAILED, NOT_ATTEMPTED, PASSED, answers, exercises, run_cases
from mistakes import MISTAKES, RIGHT

GRADED = sorted(i for i in exercises() if not i.startswith("test."))
GRADER_SEEDS = (7, 2024)  # two of the seeds a grading run might draw


def test_every_exercise_has_a_right_answer_and_two_to_four_mistakes():
    assert sorted(RIGHT) == GRADED
    assert sorted(MISTAKES) == GRADED
    few = {i: len(m) for i, m in MISTAKES.items() if not 2 <= len(m) <= 5}
    assert not few, few


@pytest.mark.parametrize("ex_id", GRADED)
def test_a_right_answer_passes_the_check_and_the_grader(ex_id):
    ex = exercises()[ex_id]
    result = run_cases(ex, RIGHT[ex_id], seed=0)
    assert result.status == PASSED, result.message
    for seed in GRADER_SEEDS:
        status, message, flags = judge(ex_id, seed, answers(ex_id, RIGHT[ex_id], seed))
        assert (status, flags) == (PASSED, []), message


@pytest.mark.parametrize("ex_id", GRADED)
def test_a_stub_is_not_attempted_for_the_check_and_the_grader(ex_id):
    """The student version's stub (`raise NotImplementedError()`): 'not attempted', never failed or crashed."""
    def stub(*args, **kwargs):
        raise NotImplementedError()

    assert run_cases(exercises()[ex_id], stub, seed=0).status == NOT_ATTEMPTED
    for seed in GRADER_SEEDS:
        assert judge(ex_id, seed, answers(ex_id, stub, seed))[0] == NOT_ATTEMPTED


@pytest.mark.parametrize("ex_id,what,fn", [(i, what, fn) for i in GRADED for what, fn in MISTAKES.get(i, [])],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_typical_mistake_fails_the_check_and_the_grader(ex_id, what, fn):
    ex = exercises()[ex_id]
    n = len(ex.cases(np.random.default_rng(0)))
    result = run_cases(ex, fn, seed=0)
    assert result.status == FAILED, f"the notebook's check passes a mistake: {what}"
    assert result.message.startswith("Case ") and f" of {n} (" in result.message, result.message  # names the case
    for seed in GRADER_SEEDS:
        status, message, _ = judge(ex_id, seed, answers(ex_id, fn, seed))
        assert status == FAILED, f"the grader passes a mistake with seed {seed}: {what}"
        assert message.startswith("Case "), message


@pytest.mark.parametrize("ex_id", GRADED)
def test_the_reference_passes_its_own_check(ex_id):
    """One line per exercise: the reference agrees with its own cases (the proof is the tests above)."""
    assert run_cases(exercises()[ex_id], exercises()[ex_id].reference, seed=5).status == PASSED


def test_the_fgsm_check_exempts_only_pixels_whose_gradient_sign_is_tied():
    """10.fgsm_step is compared pixel for pixel; the only pixels let off are those whose gradient float32 cannot
    sign (within 10x its own rounding error of 0, measured against float64, or exactly 0). There x - eps, x and
    x + eps are all accepted; everywhere else one pixel moved the wrong way fails."""
    import torch
    from torch import nn

    from course_utils.grading.per_notebook.nb10_adversarial import _tied
    from course_utils.grading import Case

    ex = exercises()["10.fgsm_step"]
    tied_share, checked = [], 0
    for seed in range(4):
        for case in ex.cases(np.random.default_rng(seed)):
            expected, x = ex.reference(*case.args, **case.kwargs), case.args[1]
            tied_share.append(float(_tied(case).float().mean()))
            assert ex.verdict(case, expected, expected) is None
            moved = ((expected - x).abs() > 1e-6) & ~_tied(case)
            if moved.any():
                wrong = expected.clone()
                wrong.view(-1)[moved.view(-1).nonzero()[0]] = x.reshape(-1)[moved.view(-1).nonzero()[0]]
                assert ex.verdict(case, expected, wrong) is not None, (seed, case.description)
                checked += 1
    assert checked >= 16 and max(tied_share) < 0.01, (checked, max(tied_share))

    # a tie for certain: a linear model blind to the first column of pixels has a gradient of exactly 0 there
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    with torch.no_grad():
        model[1].weight.view(5, 3, 4, 4)[..., 0] = 0
    x = torch.full((1, 3, 4, 4), 0.5)
    case = Case("blind to column 0", (model, x, torch.tensor([2]), 0.1))
    tied = _tied(case)
    assert tied[..., 0].all() and not tied[..., 1:].any()
    expected = ex.reference(*case.args)
    for value, ok in ((0.6, True), (0.4, True), (0.55, False)):
        other = expected.clone()
        other[0, 1, 2, 0] = value  # a tied pixel: moved up, down, or by a wrong amount
        assert (ex.verdict(case, expected, other) is None) == ok, value
    other = expected.clone()
    other[0, 1, 2, 1] = 1.0 - other[0, 1, 2, 1]  # a pixel with a clear gradient, moved the other way
    assert ex.verdict(case, expected, other) is not None
