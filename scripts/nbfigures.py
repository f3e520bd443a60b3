"""Execute notebooks and save every figure they draw as PNG, to look at them.

    python scripts/nbfigures.py notebooks/03_occlusion_saliency.ipynb [--out build/figures]

Writes build/figures/<notebook>/<cell>_<k>.png and prints the time each notebook took.
With --gallery docs/gallery, the figure of the cell tagged "gallery" is also saved there,
900 px wide at most, as <notebook>.png (a cell tagged "gallery-NAME" as <notebook>-NAME.png):
the README's gallery is made by the notebooks' own code.
"""
import argparse
import base64
import os
import time

from nbexec import execute_file


def save_gallery(png, dest, width=900):
    import io

    from PIL import Image

    os.makedirs(os.path.dirname(dest), exist_ok=True)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    img = img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)  # ~1/3 the bytes
    img.save(dest, optimize=True)
    print(f"gallery: {dest}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", default="build/figures")
    p.add_argument("--gallery", default=None)
    args = p.parse_args()
    for path in args.notebooks:
        t0 = time.time()
        nb = execute_file(path, timeout=900)
        took = time.time() - t0
        folder = os.path.join(args.out, os.path.basename(path)[:-6])
        os.makedirs(folder, exist_ok=True)
        n = 0
        for i, cell in enumerate(nb.cells):
            for k, o in enumerate(cell.get("outputs", [])):
                data = o.get("data", {})
                if "image/png" in data:
                    png = base64.b64decode(data["image/png"])
                    with open(os.path.join(folder, f"cell{i:02d}_{k}.png"), "wb") as f:
                        f.write(png)
                    n += 1
                    tags = [t for t in cell.metadata.get("tags", []) if t.split("-")[0] == "gallery"]
                    if args.gallery and tags:
                        suffix = tags[0][len("gallery"):]
                        save_gallery(png, os.path.join(args.gallery, os.path.basename(path)[:-6] + suffix + ".png"))
                        cell.metadata["tags"] = []  # the first figure of the cell only
                text = o.get("text") or data.get("text/plain")
                if text:
                    print(f"[cell {i}] " + ("".join(text) if isinstance(text, list) else text)[:1500].rstrip())
        print(f"{path}: {took:.1f} s, {n} figures in {folder}")


if __name__ == "__main__":
    main()
