"""Reference warps for tests/data/test_augment.c: torch grid_sample (bilinear, reflection padding,
align_corners=False) with the affine theta = C . R(angle) . Z(zoom, centre) . F(flip), where C maps
the square crop window into the normalised coordinates of the whole (possibly non-square) source,
and fastai's lighting sigmoid((logit(x) + logit(brightness)) * contrast) applied to the source
pixels first, then the ImageNet normalisation."""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from oracle_common import save

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def theta_for(p, W, H):
    angle, zoom, zx, zy, flip, cx, cy = p[:7]
    f = -1.0 if flip else 1.0
    iz = 1.0 / zoom
    ZF = np.array([[iz * f, 0, (2 * zx - 1) * (1 - iz)], [0, iz, (2 * zy - 1) * (1 - iz)], [0, 0, 1]])
    t = math.radians(angle)
    R = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    m = min(W, H)
    ox, oy = cx * (W - m), cy * (H - m)
    C = np.array([[m / W, 0, 2 * ox / W + m / W - 1], [0, m / H, 2 * oy / H + m / H - 1], [0, 0, 1]])
    return (C @ R @ ZF)[:2]


def lit(src, b, c):
    x = src.astype(np.float64) / 255.0
    if b != 0.5 or c != 1.0:
        xc = np.clip(x, 1e-6, 1 - 1e-6)
        z = (np.log(xc / (1 - xc)) + math.log(b / (1 - b))) * c
        x = 1 / (1 + np.exp(-z))
    return (x - MEAN) / STD


def make(outdir):
    rng = np.random.default_rng(11)
    srcs = []
    for h, w in ((96, 96), (120, 80)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([128 + 100 * np.sin(xx / 7.0), 128 + 100 * np.cos(yy / 5.0), (xx * 3 + yy * 2) % 256], -1)
        srcs.append((base + rng.integers(-20, 20, base.shape)).clip(0, 255).astype(np.uint8))
    # angle, zoom, zoom_x, zoom_y, flip, crop_x, crop_y, brightness, contrast, source, S
    cases = [
        (0, 1, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 1, 0, 96),
        (0, 1, 0.5, 0.5, 1, 0.5, 0.5, 0.5, 1, 0, 96),
        (10, 1, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 1, 0, 64),
        (-7.5, 1.1, 0.2, 0.9, 1, 0.5, 0.5, 0.42, 1.2, 0, 128),
        (30, 1.05, 0.7, 0.3, 0, 0.5, 0.5, 0.6, 0.8, 0, 80),
        (4, 1.08, 0.5, 0.1, 0, 0.5, 0.0, 0.5, 1, 1, 72),
        (-9, 1.0, 0.5, 0.5, 1, 0.5, 1.0, 0.45, 0.9, 1, 64),
        (45, 0.7, 0.5, 0.5, 0, 0.5, 0.3, 0.5, 1, 1, 100),  # zoom out: much reflection padding
    ]
    t = {"src0": torch.from_numpy(srcs[0]), "src1": torch.from_numpy(srcs[1])}
    for k, p in enumerate(cases):
        src = srcs[int(p[9])]
        H, W = src.shape[:2]
        S = int(p[10])
        img = torch.from_numpy(lit(src, p[7], p[8])).permute(2, 0, 1)[None]  # 1,3,H,W float64
        theta = torch.from_numpy(theta_for(p, W, H))[None]
        grid = F.affine_grid(theta, (1, 3, S, S), align_corners=False)
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        t[f"params{k}"] = torch.tensor(p, dtype=torch.float32)
        t[f"out{k}"] = out[0].permute(1, 2, 0).contiguous().float()
    save(os.path.join(outdir, "data_warp.safetensors"), t)
