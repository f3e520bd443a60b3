"""Issue #26: every number the notebooks' prose states is checked or marked as a constant of the method.

A number in a markdown cell passes when (a) a `claim(...)` call in the same notebook's code states it (the
check runs with the notebook, under nbval), or (b) the cell marks it as a constant of the method (a paper's
value, a hyper-parameter, a size the code sets) in an HTML comment that the rendered page does not show:
`<!-- constants: 224, 0.5, 16 -->`. Numbers in code spans, math, links, headings, years, notebook and
exercise numbers are not statements about an output and are skipped.
"""
import ast
import json
import re
from pathlib import Path

import pytest

from course_utils.claims import ClaimError, claim

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NUMBER = re.compile(r"(?<![\w.\-−/])\d[\d,]*(?:\.\d+)?(?![\w])")
CONSTANTS = re.compile(r"<!--\s*constants:(.*?)-->", re.S)


def _norm(n):
    return n.replace(",", "").rstrip(".")


def prose_numbers(markdown):
    """The numbers a markdown cell states about the world, and the ones it marks as constants."""
    constants = {_norm(c) for m in CONSTANTS.finditer(markdown) for c in re.split(r",\s+|;|\s+", m.group(1).strip()) if c}
    text = CONSTANTS.sub("", markdown)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"^#.*$", " ", text, flags=re.M)  # headings
    text = re.sub(r"\b(?:notebooks?|Exercise|exercise|lecture|section|step)\s+\d+(?:\s*(?:,|and|or|to|–|-)\s*\d+)*",
                  " ", text, flags=re.I)
    text = re.sub(r"\[\d\d[^\]]*\]", " ", text)  # links to another notebook: [04 · guided backprop]
    found = []
    for m in NUMBER.finditer(text):
        n = _norm(m.group())
        if re.fullmatch(r"(19|20)\d\d", n):  # a year (a citation)
            continue
        found.append(n)
    return found, constants


def claimed_numbers(nb):
    """The numbers stated in the claim(...) calls of a notebook's code cells."""
    out = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "claim":
                for arg in list(node.args) + [k.value for k in node.keywords]:
                    for s in ast.walk(arg):
                        if isinstance(s, ast.Constant) and isinstance(s.value, str):
                            out.update(_norm(n) for n in NUMBER.findall(s.value))
    return out


def unchecked(path):
    nb = json.loads(Path(path).read_text())
    claimed = claimed_numbers(nb)
    missing = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        found, constants = prose_numbers("".join(cell["source"]))
        missing += [(i, n) for n in found if n not in claimed and n not in constants]
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_checked_or_a_constant(path):
    missing = unchecked(path)
    assert not missing, (f"{path.name}: numbers in the text with neither a claim(...) in the notebook nor a "
                         f"<!-- constants: ... --> mark in their cell: " + ", ".join(f"cell {i}: {n}" for i, n in missing))


def test_the_number_finder_skips_what_is_not_a_statement():
    found, constants = prose_numbers(
        "# 03 · Occlusion\nThe score falls to about 24 (Zeiler & Fergus, 2014), see notebook 04 and "
        "[04 · guided](04_guided_backprop.ipynb); `lr=0.02`, $w = 48$, 1,088 numbers, VGG-19, 3x3.\n"
        "<!-- constants: 1,088 -->")
    assert found == ["24", "1088"] and constants == {"1088"}


def test_a_claim_raises_when_the_output_says_otherwise(capsys):
    # against values worked by hand
    assert claim(24.3, "about 24") is None
    claim(0.97, "0.97"), claim(0.312, "31%"), claim(1088, "1,088"), claim(0.3, "between 0.2 and 0.4")
    claim(0.88, "more than", 0.77, "the robust drawings fool it more often"), claim(True, "keeps the engine")
    claim(0.4, "at most 0.5")
    assert "measured 31.2%" in capsys.readouterr().out
    for value, said in [(31, "about 24"), (0.91, "0.97"), (0.966, "0.96"), (0.53, "about 30%"), (0.6, "at most 0.5"),
                        (False, "nearly empty"), (0.15, "between 0.2 and 0.4"), (1089, "1,088")]:
        with pytest.raises(ClaimError, match="the text says"):
            claim(value, said)
    with pytest.raises(ClaimError):
        claim(0.77, "more than", 0.88)
    with pytest.raises(ValueError, match="comparison"):
        claim(1, "roughly", 2)
