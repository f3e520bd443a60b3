"""The panels: the notebooks' interactive views, where a reader moves a slider or presses Run.

- `lessons`: one function per panel, `<what>_panel(...)`, each one call of a lesson's function drawn by its
  `show_*` figure;
- `blocks`: what panels are built from: `live_panel` (redraws as a control moves), `run_panel` (a button, a
  progress bar, a live preview), image previews;
- `output`: `draw_into`, how a panel shows its figures without the nbclient hang of `with out:`.
"""
from . import blocks, lessons, output
from .blocks import live_panel, png_bytes, preview_row, run_panel
from .lessons import (attack_panel, backprop_rules_panel, deepdream_panel, fast_style_panel,
                      feature_visualization_panel, filter_and_maps_panel, inversion_panel, predictions_panel,
                      retrain_digits_panel, robust_digits_panel, saliency_panel, style_blend_panel,
                      style_transfer_panel, top_patches_panel, tsne_panel)
from .output import draw_into

__all__ = ["blocks", "lessons", "output", "live_panel", "run_panel", "preview_row", "png_bytes", "draw_into",
           "predictions_panel", "filter_and_maps_panel", "retrain_digits_panel", "top_patches_panel", "tsne_panel",
           "saliency_panel", "backprop_rules_panel", "feature_visualization_panel", "inversion_panel", "deepdream_panel",
           "style_transfer_panel", "fast_style_panel", "style_blend_panel", "attack_panel", "robust_digits_panel"]
