"""Mechanism 2: backprop to the image with a rule. Saliency, deconvnet, guided backprop and Grad-CAM differ
only in how the backward pass treats ReLU-like units and where it stops:

- `rules`: `backward_rule`, one context manager that swaps the backward rule of every ReLU-like unit of any
  model, and undoes itself;
- `attribution`: the maps, `attribute(model, x, target, method)`, and occlusion (the map by experiment);
- `map_quality`: how to judge a map (deletion and insertion curves, sanity checks);
- `segmentation`: a map as the seed of GrabCut, scored by its overlap with the object.

A new map by a backward rule goes in `attribution` (with its rule in `rules`); a new way to judge maps in
`map_quality`. Zeiler & Fergus's deconvnet written their way (switches, unpooling) is a lesson beside
the others (`course_utils.zeiler_fergus`), tested equal to backprop with the deconvnet rule here.
"""
from . import attribution, map_quality, rules, segmentation

__all__ = ["rules", "attribution", "map_quality", "segmentation"]
