"""The copy check (copydetect, winnowing as MOSS does): copies are listed, independent solutions are not."""
import json
import pathlib

from course_utils.grading import classroom, notebooks, similarity as S

ROOT = pathlib.Path(__file__).resolve().parents[1]
NB = json.loads((ROOT / "notebooks" / "03_occlusion_saliency.ipynb").read_text())
GIVEN = classroom.function_source(notebooks.student_version(NB), "occlusion_map")
MODEL = classroom.function_source(NB, "occlusion_map")

ANN = '''def occlusion_map(model, x, target, window, stride, baseline=0.5):
    # HINT: p = torch.softmax(model(x), dim=1)[0, c]; copy x, fill x[..., r:r + window, col:col + window]
    c = cu.class_index(target)
    H, W = x.shape[-2:]
    rows = list(range(0, H - window + 1, stride))
    cols = list(range(0, W - window + 1, stride))
    with torch.no_grad():
        base = torch.softmax(model(x), dim=1)[0, c]
        heat = torch.zeros(len(rows), len(cols))
        for i, top in enumerate(rows):
            for j, left in enumerate(cols):
                covered = x.clone()
                covered[:, :, top:top + window, left:left + window] = baseline
                heat[i, j] = base - torch.softmax(model(covered), dim=1)[0, c]
    return heat
'''
# Bob copies Ann: other names, other comments, another layout
BOB = '''def occlusion_map(model, x, target, window, stride, baseline=0.5):
    # HINT: p = torch.softmax(model(x), dim=1)[0, c]; copy x, fill x[..., r:r + window, col:col + window]
    # my own approach: slide a grey square over the image
    k = cu.class_index(target)
    height, width = x.shape[-2:]
    ys = list(range(0, height - window + 1, stride))
    xs = list(range(0, width - window + 1, stride))

    with torch.no_grad():
        p0 = torch.softmax(model(x), dim=1)[0, k]   # the unoccluded probability
        result = torch.zeros(len(ys), len(xs))
        for a, y0 in enumerate(ys):
            for b, x0 in enumerate(xs):
                img = x.clone()
                img[:, :, y0:y0 + window, x0:x0 + window] = baseline
                result[a, b] = p0 - torch.softmax(model(img), dim=1)[0, k]
    return result
'''
# Cid writes his own: one batch of all occluded copies
CID = '''def occlusion_map(model, x, target, window, stride, baseline=0.5):
    # HINT: p = torch.softmax(model(x), dim=1)[0, c]; copy x, fill x[..., r:r + window, col:col + window]
    idx = cu.class_index(target)
    n = (x.shape[-1] - window) // stride + 1
    batch = x.repeat(n * n, 1, 1, 1)
    for pos in range(n * n):
        r, q = divmod(pos, n)
        batch[pos, :, r * stride:r * stride + window, q * stride:q * stride + window] = baseline
    with torch.no_grad():
        probs = model(torch.cat([x, batch])).softmax(-1)[:, idx]
    return (probs[0] - probs[1:]).reshape(n, n)
'''


def _names(pairs):
    return {frozenset(p.names) for p in pairs}


def test_a_renamed_copy_of_a_classmate_is_listed_and_an_independent_solution_is_not():
    pairs = S.similar_pairs("03.occlusion_map", {"ann": ANN, "bob": BOB, "cid": CID}, GIVEN,
                            {S.COURSE: S.course_source("03.occlusion_map"), S.MODEL: MODEL})
    # Ann follows the hint and shares 84% with the model solution: close, and still her own
    assert _names(pairs) == {frozenset({"ann", "bob"})}
    assert pairs[0].share > 0.9
    # the marked parts cover most of both
    for code, sl in zip(pairs[0].code, pairs[0].slices):
        assert (sl[1] - sl[0]).sum() > 0.6 * len(code.strip())


def test_a_reformatted_copy_of_the_reference_is_listed():
    course = S.course_source("03.occlusion_map")
    # the course's occlusion_drops, pasted in with other names and another layout
    pasted = course.replace("drops", "falls").replace("baseline", "fill").replace("    ", "  ").replace(", ", ",")
    pasted = "\n\n".join(line for line in pasted.splitlines() if not line.strip().startswith('"""'))
    pairs = S.similar_pairs("03.occlusion_map", {"dan": pasted, "cid": CID}, GIVEN,
                            {S.COURSE: course, S.MODEL: MODEL})
    assert frozenset({"dan", S.COURSE}) in _names(pairs)
    assert not any("cid" in p.names for p in pairs)
    leaked = S.similar_pairs("03.occlusion_map", {"eve": MODEL.replace("out", "res")}, GIVEN, {S.MODEL: MODEL})
    assert _names(leaked) == {frozenset({"eve", S.MODEL})}  # a leaked answer key


def test_the_handed_out_code_and_one_liners_never_count():
    assert S.similar_pairs("03.occlusion_map", {"a": GIVEN, "b": GIVEN}, GIVEN) == []
    one = "def f(x, g):\n    return g * (x > 0) * (g > 0)\n"
    assert S.similar_pairs("04.guided_relu_backward", {"a": one, "b": one}) == []  # what anyone would write


def test_the_report_shows_both_sides_with_the_shared_parts_marked(tmp_path):
    pairs = S.similar_pairs("03.occlusion_map", {"ann": ANN, "bob": BOB}, GIVEN)
    page = pathlib.Path(S.write_report(pairs, str(tmp_path / "similarity.html"))).read_text()
    assert "ann" in page and "bob" in page and page.count("<mark>") >= 2 and "p0 - torch.softmax" in page
    assert S.flag(pairs[0], "ann") == f"similar to bob's solution ({pairs[0].share:.0%} shared; similarity.html)"
