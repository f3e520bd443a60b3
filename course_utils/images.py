"""Images in and out: bundled photos (no download), the reader's own files, tensors, grids.

Conventions: an image tensor is float32, RGB, values in [0, 1], shape (1, 3, H, W).
`load_image` returns a PIL image (RGB); `to_tensor` / `to_image` convert.
"""
from __future__ import annotations

import difflib
import io
import os
import pathlib
import urllib.request
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = 1024  # images are bounded to this longest side unless a size is asked for


class ImageLoadError(ValueError):
    """An image that cannot be found or read; the message says which and why."""


def _skimage(file):
    def path():
        import skimage.data

        return os.path.join(skimage.data.data_dir, file)

    return path


def _sklearn(file):
    def path():
        import sklearn.datasets

        return os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", file)

    return path


def _matplotlib(file):
    def path():
        import matplotlib

        return os.path.join(matplotlib.get_data_path(), "sample_data", file)

    return path


# name: (where it comes from, path function, what it shows)
BUNDLED = {
    "astronaut": ("scikit-image", _skimage("astronaut.png"), "Eileen Collins, NASA portrait"),
    "chelsea": ("scikit-image", _skimage("chelsea.png"), "a tabby cat"),
    "coffee": ("scikit-image", _skimage("coffee.png"), "a cup of coffee"),
    "rocket": ("scikit-image", _skimage("rocket.jpg"), "a rocket on the launch pad"),
    "motorcycle": ("scikit-image", _skimage("motorcycle_left.png"), "a motorcycle (stereo pair, left)"),
    "hubble_deep_field": ("scikit-image", _skimage("hubble_deep_field.jpg"), "galaxies, Hubble"),
    "immunohistochemistry": ("scikit-image", _skimage("ihc.png"), "stained tissue"),
    "retina": ("scikit-image", _skimage("retina.jpg"), "a human retina"),
    "brick": ("scikit-image", _skimage("brick.png"), "brick wall texture (grey)"),
    "grass": ("scikit-image", _skimage("grass.png"), "grass texture (grey)"),
    "gravel": ("scikit-image", _skimage("gravel.png"), "gravel texture (grey)"),
    "camera": ("scikit-image", _skimage("camera.png"), "the cameraman (grey)"),
    "coins": ("scikit-image", _skimage("coins.png"), "coins (grey)"),
    "horse": ("scikit-image", _skimage("horse.png"), "a horse silhouette (binary)"),
    "logo": ("scikit-image", _skimage("logo.png"), "the scikit-image logo (RGBA)"),
    "china": ("scikit-learn", _sklearn("china.jpg"), "a Chinese palace"),
    "flower": ("scikit-learn", _sklearn("flower.jpg"), "a flower"),
    "grace_hopper": ("matplotlib", _matplotlib("grace_hopper.jpg"), "Rear Admiral Grace Hopper"),
}
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper")
TEXTURES = ("gravel", "grass", "brick", "immunohistochemistry", "hubble_deep_field")


def sample_images() -> dict:
    """{name: "source: description"} for every bundled image (no download needed)."""
    return {name: f"{src}: {what}" for name, (src, _, what) in BUNDLED.items()}


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited on white, 16-bit grey is rescaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        img = Image.fromarray((a * 255).round().astype(np.uint8))
    if img.mode == "P" or img.mode == "LA" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def _from_array(a) -> Image.Image:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise ImageLoadError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ImageLoadError("the image array holds NaN or infinite values")
        if a.max(initial=0) > 1.0 + 1e-6 or a.min(initial=0) < -1e-6:
            if a.max() <= 255 and a.min() >= 0:
                a = a / 255.0
            else:
                raise ImageLoadError(
                    f"float image values must lie in [0, 1] (or [0, 255]), got [{a.min():.3g}, {a.max():.3g}]"
                )
        a = (a * 255).round().astype(np.uint8)
    return Image.fromarray(a)


def _open(path, label):
    try:
        with Image.open(path) as img:
            img.load()
            # a phone stores a portrait photo as landscape pixels plus an EXIF orientation: apply it
            return ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise ImageLoadError(f"Could not read image {label}: no such file.") from None
    except IsADirectoryError:
        raise ImageLoadError(f"Could not read image {label}: it is a folder, not a file.") from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"Could not read image {label}: it is not an image format Pillow can read "
            "(PNG, JPEG, GIF, BMP, TIFF, WebP, ...), or the file is damaged."
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"Could not read image {label}: the file is damaged or truncated ({e}).") from None


def _fetch_url(url, timeout=15):
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "course_utils"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read(50 * 2**20 + 1)
    except Exception as e:  # noqa: BLE001 - any network failure gets the same clear answer
        raise ImageLoadError(
            f"Could not download image {url!r} ({e}). Are you offline? "
            f"Bundled images need no network: {', '.join(BUNDLED)}."
        ) from None
    if len(data) > 50 * 2**20:
        raise ImageLoadError(f"Image {url!r} is larger than 50 MB.")
    return _open(io.BytesIO(data), repr(url))


def _resolve(src) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _open(io.BytesIO(bytes(src)), "(uploaded bytes)")
    if torch.is_tensor(src):
        t = src.detach().cpu().float()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ImageLoadError(f"expected one image, got a batch of {t.shape[0]}: index it first")
            t = t[0]
        check_range(t)
        return _from_array(t.clamp(0, 1).numpy())
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if isinstance(src, pathlib.Path):
        return _open(src, repr(str(src)))
    if isinstance(src, str):
        if src in BUNDLED:
            return _open(BUNDLED[src][1](), f"{src!r} (bundled)")
        if src.startswith(("http://", "https://")):
            return _fetch_url(src)
        if os.path.exists(src):
            return _open(src, repr(src))
        close = difflib.get_close_matches(src, list(BUNDLED), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ImageLoadError(
            f"Could not read image {src!r}: it is neither a bundled image nor an existing file.{hint} "
            f"Bundled images: {', '.join(BUNDLED)}."
        )
    raise ImageLoadError(
        f"Cannot load an image from a {type(src).__name__}: give a bundled name, a path, a URL, "
        "a PIL image, a numpy array, a tensor or the bytes of a file."
    )


def load_image(src, size=None, max_side=MAX_SIDE) -> Image.Image:
    """An RGB PIL image from a bundled name ("chelsea"), a path, a URL, PIL, numpy, tensor or bytes.

    size=None keeps the aspect ratio, bounding the longest side to `max_side`;
    size=224 resizes the shorter side to 224 and crops the centre square (ImageNet style);
    size=(H, W) resizes to exactly that.
    """
    img = _to_rgb(_resolve(src))
    w, h = img.size
    if w == 0 or h == 0:
        raise ImageLoadError("the image is empty (zero width or height)")
    if size is None:
        if max(w, h) > max_side:
            s = max_side / max(w, h)
            img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
        return img
    if isinstance(size, int):
        s = size / min(w, h)
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        img = img.resize((nw, nh), Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        return img.crop((left, top, left + size, top + size))
    th, tw = size
    return img.resize((tw, th), Image.Resampling.LANCZOS)


def check_range(x: torch.Tensor, what="an image tensor"):
    """Raise when `x` is clearly not an image in [0, 1]; warn when it only overshoots a little.

    The course's models take RGB in [0, 1] and normalize it themselves: a tensor in 0..255, or one
    already normalized with ImageNet's mean and std, would be classified as noise.
    """
    lo, hi = float(x.min()), float(x.max())
    if lo < -0.5:
        raise ImageLoadError(f"{what} must hold values in [0, 1], got [{lo:.3g}, {hi:.3g}]: it looks normalized "
                             "(mean/std); pass the image in [0, 1], the model normalizes it itself")
    if hi > 2.0:
        raise ImageLoadError(f"{what} must hold values in [0, 1], got [{lo:.3g}, {hi:.3g}]: it looks like 0..255, "
                             "so divide it by 255 first (x / 255)")
    if lo < -1e-3 or hi > 1 + 1e-3:
        warnings.warn(f"{what} has values in [{lo:.3g}, {hi:.3g}], outside [0, 1]; they are clamped", stacklevel=3)


def to_tensor(img, size=None) -> torch.Tensor:
    """A (1, 3, H, W) float tensor in [0, 1] from a PIL image or anything `load_image` takes."""
    if torch.is_tensor(img) and size is None:
        t = img.detach().float()
        t = t.unsqueeze(0) if t.dim() == 3 else t
        if t.dim() != 4 or t.shape[1] != 3:
            raise ImageLoadError(f"expected an image tensor (1, 3, H, W) or (3, H, W), got {tuple(img.shape)}")
        check_range(t)
        return t.clamp(0, 1)
    if not isinstance(img, Image.Image) or size is not None or img.mode != "RGB":
        img = load_image(img, size=size)
    a = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_image(x) -> Image.Image:
    """A PIL RGB image from a (1, 3, H, W) or (3, H, W) tensor in [0, 1] (values are clamped)."""
    if not torch.is_tensor(x):
        raise TypeError(f"to_image takes a tensor, got {type(x).__name__} (use load_image for files)")
    t = x.detach().cpu().float()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_image takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected shape (1, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    a = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)


def _as_displayable(im):
    """numpy array for imshow: (H, W, 3) in [0, 1] for colour, (H, W) for maps."""
    if isinstance(im, Image.Image):
        return np.asarray(_to_rgb(im)), None
    if torch.is_tensor(im):
        im = im.detach().cpu().float()
        if im.dim() == 4:
            im = im[0]
        if im.dim() == 3 and im.shape[0] == 3:
            return im.clamp(0, 1).permute(1, 2, 0).numpy(), None
        if im.dim() == 3 and im.shape[0] == 1:
            im = im[0]
        return im.numpy(), "map"
    a = np.asarray(im)
    if a.ndim == 2:
        return a, "map"
    return a, None


def grid(images, titles=None, ncols=None, size=2.6, cmap="viridis", suptitle=None, colorbar=False):
    """A matplotlib Figure with the images in a titled grid (use `show` to display it).

    images: a list of PIL images, tensors ((1,3,H,W), (3,H,W), or (H,W) maps), numpy arrays,
    or one (N,3,H,W) batch. Single-channel maps are drawn with `cmap`.
    """
    import matplotlib.pyplot as plt

    if torch.is_tensor(images) and images.dim() == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    n = len(images)
    if n == 0:
        raise ValueError("nothing to show: the list of images is empty")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {n} images but {len(titles)} titles")
    ncols = ncols or min(n, 6)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        a, kind = _as_displayable(images[k])
        artist = ax.imshow(a, cmap=cmap if kind == "map" else None)
        if colorbar and kind == "map":
            fig.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show(images, titles=None, **kwargs):
    """Draw images in a titled grid right now (see `grid` for the arguments)."""
    import matplotlib.pyplot as plt

    fig = grid(images, titles, **kwargs)
    if plt.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        plt.close(fig)  # a non-interactive backend (scripts, tests): nothing to display
    else:
        plt.show()
