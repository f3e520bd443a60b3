"""Benchmarks of DeepDream (notebook 07): one dream at 224 px, and the zoom loop's frame."""
from bench import timed

import course_utils as cu
import course_utils.deepdream as dd


def _dream_224():
    model = cu.load_model()
    photo = cu.as_batch("china", 224)
    s = timed(lambda: dd.deepdream(model, photo, octaves=3, steps=10, progress=False))
    return s, f"3 octaves x 10 steps at {dd.DEFAULT_LAYER}: {30 / s:.1f} steps/s"


def _zoom_frame():
    model = cu.load_model()
    s = timed(lambda: dd.zoom_sequence(model, "noise", frames=2, size=160, octaves=2, steps=5, progress=False))
    return s, "one dream-then-zoom frame at 160 px (2 octaves x 5 steps)"


BENCHES = [
    ("07 deepdream, one dream at 224 px", None, _dream_224),
    ("07 deepdream, one zoom frame at 160 px", None, _zoom_frame),
]
