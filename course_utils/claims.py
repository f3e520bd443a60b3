"""Numbers the text states about an output, checked where they are computed (issue #26).

A notebook's prose says "the score falls to about 24" or "the robust drawings fool it more often". Such a
sentence drifts when the code, the model or a seed changes. `claim` puts the sentence's number beside the
value it describes, prints both, and raises `ClaimError` when the value no longer says what the text says,
so nbval and nbclient fail on drift as they fail on an exception:

    claim(score, "about 24")                  # within 10% (or `within=`)
    claim(share, "31%")                       # a share in [0, 1] against a percentage, to its last digit
    claim(fooled_robust, "more than", fooled_standard, "the robust drawings fool it more often")
    claim(bool(...), "keeps the engine")      # a fact that is not a number

`say` writes a sentence with the measured values into the notebook as Markdown instead, when the number
should not be fixed in the text at all. The test `tests/test_claims.py` reads every markdown cell and
reports each number that is neither in a claim of its notebook nor marked as a constant of the method
(`<!-- constants: 224, 0.02 -->` in the cell).
"""
from __future__ import annotations

import re

from IPython.display import Markdown, display

_NUMBER = re.compile(r"[-−]?\d[\d,]*(?:\.\d+)?")
_COMPARE = {"more than": ">", "above": ">", "over": ">", "greater than": ">", "at least": ">=",
            "less than": "<", "below": "<", "under": "<", "at most": "<=", "fewer than": "<"}


class ClaimError(AssertionError):
    """A number or a comparison the notebook's text states that its output no longer shows."""


def _number(text):
    """The float a stated number means ("1,088" -> 1088.0, "31%" -> 31.0) and the unit of its last digit."""
    s = text.replace(",", "").replace("−", "-")
    digits = s.split(".")[1] if "." in s else ""
    return float(s), 10.0 ** -len(digits)


def _said_numbers(said):
    return [m.group() for m in _NUMBER.finditer(said)]


def claim(value, said, than=None, sentence=None, within=None):
    """Check one thing the text says about an output; print the value beside it; raise ClaimError when off.

    value:  the measured number (a float, an int, a 0-d tensor), or a bool for a claim that is not a number.
    said:   the words of the text: "about 0.85", "0.97", "31%", "1,088", "between 0.2 and 0.4",
            "at most 0.5", "more than 3"; or a comparison word ("more than", "less than", "at least", "at
            most") with `than`, another measured value: claim(a, "more than", b).
    within: the tolerance of "about" (default 10% of the number); a plain number must round to what is
            written ("0.97" means 0.965..0.975); with a percentage ("31%") the value is a share in [0, 1].
    Returns None, so a claim on a cell's last line prints only its check.
    """
    label = sentence or said
    if isinstance(value, bool) or (than is None and not _said_numbers(said)):
        if not value:
            raise ClaimError(f"the text says {label!r}, and the output no longer shows it")
        print(f"checked: {label}")
        return
    v = float(value)
    shown = f"{v:.4g}"
    words = said.strip().lower()
    if than is not None:
        op = _COMPARE.get(words)
        if op is None:
            raise ValueError(f"a comparison with `than` is one of {sorted(_COMPARE)}, got {said!r}")
        t = float(than)
        ok = {">": v > t, ">=": v >= t, "<": v < t, "<=": v <= t}[op]
        if not ok:
            raise ClaimError(f"the text says {label!r} ({shown} {op} {t:.4g}), and the output shows {shown} "
                             f"against {t:.4g}")
        print(f"checked: {label} ({shown} {op} {t:.4g})")
        return
    numbers = _said_numbers(said)
    percent = "%" in said
    scale = 100.0 if percent else 1.0  # a percentage in the text is a share in [0, 1] in the code
    v_in = v * scale
    for word, op in sorted(_COMPARE.items(), key=lambda kv: -len(kv[0])):
        if words.startswith(word) or words.startswith(op):
            t = _number(numbers[0])[0]
            ok = {">": v_in > t, ">=": v_in >= t, "<": v_in < t, "<=": v_in <= t}[op]
            break
    else:
        if words.startswith("between") and len(numbers) >= 2:
            lo, hi = sorted(_number(n)[0] for n in numbers[:2])
            ok = lo <= v_in <= hi
        elif words.startswith(("about", "around", "roughly", "nearly", "almost", "~", "≈")):
            t = _number(numbers[0])[0]
            ok = abs(v_in - t) <= (abs(t) * 0.1 if within is None else within)
        else:
            t, unit = _number(numbers[0])
            ok = abs(v_in - t) <= (unit / 2 + 1e-9 if within is None else within)
    measured = f"{v_in:.4g}{'%' if scale == 100 else ''}"
    if not ok:
        raise ClaimError(f"the text says {label!r}, and the output shows {measured}: rewrite the sentence "
                         "(or find what changed)")
    print(f"checked: {label} (measured {measured})")


def say(template, **values):
    """Show a sentence with measured values as Markdown: say("The score falls to {s:.0f}.", s=score)."""
    display(Markdown(template.format(**values)))


__all__ = ["claim", "say", "ClaimError"]
