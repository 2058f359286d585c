"""Reference decodes for tests/io/test_image.c: PIL writes images in many PNG and JPEG
variants and records the RGB pixels it decodes (alpha composited on white)."""
import io
import os

import numpy as np
import torch
from PIL import Image

from oracle_common import save


def rgb_on_white(im):
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        a = np.asarray(im, dtype=np.float64)
        rgb = a[..., :3] * a[..., 3:4] / 255.0 + 255.0 * (1 - a[..., 3:4] / 255.0)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if im.mode == "I;16" or im.mode == "I":
        a = np.asarray(im, dtype=np.float64) / 257.0
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
        return np.stack([a, a, a], -1)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def make(outdir):
    d = os.path.join(outdir, "images")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    h, w = 37, 53  # odd sizes on purpose
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)], -1)
    base = (base + rng.integers(0, 40, base.shape)).clip(0, 255).astype(np.uint8)
    rgb = Image.fromarray(base, "RGB")
    alpha = Image.fromarray(((xx * 255) // (w - 1)).astype(np.uint8), "L")
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    cases = {
        "png_rgb8.png": (rgb, dict(format="PNG")),
        "png_rgba8.png": (rgba, dict(format="PNG")),
        "png_grey8.png": (rgb.convert("L"), dict(format="PNG")),
        "png_greyalpha.png": (rgba.convert("LA"), dict(format="PNG")),
        "png_palette.png": (rgb.convert("P", palette=Image.ADAPTIVE, colors=64), dict(format="PNG")),
        "png_interlaced.png": (rgb, dict(format="PNG", interlace=1)),
        "png_grey16.png": (Image.fromarray((base[..., 0].astype(np.uint16) * 257 + 3).astype(np.uint16), "I;16"),
                           dict(format="PNG")),
        "png_bw1.png": (rgb.convert("1"), dict(format="PNG")),
        "jpg_baseline.jpg": (rgb, dict(format="JPEG", quality=90)),
        "jpg_progressive.jpg": (rgb, dict(format="JPEG", quality=85, progressive=True)),
        "jpg_grey.jpg": (rgb.convert("L"), dict(format="JPEG", quality=90)),
        "jpg_cmyk.jpg": (rgb.convert("CMYK"), dict(format="JPEG", quality=95)),
    }
    tensors = {}
    for name, (im, kw) in cases.items():
        buf = io.BytesIO()
        im.save(buf, **kw)
        data = buf.getvalue()
        open(os.path.join(d, name), "wb").write(data)
        dec = Image.open(io.BytesIO(data))
        dec.load()
        tensors[name] = torch.from_numpy(rgb_on_white(dec).copy())
    # a JPEG named .png and a PNG named .jpg: the format comes from the bytes
    open(os.path.join(d, "jpeg_named.png"), "wb").write(open(os.path.join(d, "jpg_baseline.jpg"), "rb").read())
    tensors["jpeg_named.png"] = tensors["jpg_baseline.jpg"].clone()
    # bad files
    good_png = open(os.path.join(d, "png_rgb8.png"), "rb").read()
    good_jpg = open(os.path.join(d, "jpg_baseline.jpg"), "rb").read()
    open(os.path.join(d, "bad_empty.png"), "wb").write(b"")
    open(os.path.join(d, "bad_text.png"), "wb").write(b"<html>not an image</html>\n")
    open(os.path.join(d, "bad_trunc.png"), "wb").write(good_png[: len(good_png) // 2])
    open(os.path.join(d, "bad_trunc.jpg"), "wb").write(good_jpg[: len(good_jpg) // 2])
    open(os.path.join(d, "bad_header.png"), "wb").write(good_png[:8] + b"\0" * 40)
    # a resize reference: PIL's bilinear (antialiased) downscale of the RGB image
    tensors["resize_24x17"] = torch.from_numpy(np.asarray(rgb.resize((24, 17), Image.BILINEAR)).copy())
    tensors["resize_80x60"] = torch.from_numpy(np.asarray(rgb.resize((80, 60), Image.BILINEAR)).copy())
    save(os.path.join(outdir, "images.safetensors"), tensors)
