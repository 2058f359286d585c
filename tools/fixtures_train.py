"""PyTorch references for the training pieces: torch.optim SGD / Adam / AdamW over a few steps
with per-group learning rates that change between steps, CosineAnnealingWarmRestarts, and
fastai v1's fbeta on random predictions."""
import math
import os

import torch

from oracle_common import save, seeded


def fbeta_fastai(y_pred, y_true, thresh, beta=2, eps=1e-9):
    """fastai v1 metrics.fbeta with sigmoid=False (probabilities given)."""
    beta2 = beta ** 2
    y_pred = (y_pred > thresh).float()
    y_true = y_true.float()
    tp = (y_pred * y_true).sum(dim=1)
    prec = tp / (y_pred.sum(dim=1) + eps)
    rec = tp / (y_true.sum(dim=1) + eps)
    res = (prec * rec) / (prec * beta2 + rec + eps) * (1 + beta2)
    return res.mean()


def make(outdir):
    g = seeded(5)
    t = {}
    # two "layer groups": group 0 = a.weight, a.bias; group 2 = b.weight, b.bias
    shapes = {"a.weight": (6, 5), "a.bias": (6,), "b.weight": (3, 6), "b.bias": (3,)}
    p0 = {k: torch.randn(*s, generator=g) for k, s in shapes.items()}
    steps = 6
    grads = [{k: torch.randn(*s, generator=g) for k, s in shapes.items()} for _ in range(steps)]
    lrs = [(1e-2 * (1 + i), 3e-2 * (1 + i)) for i in range(steps)]  # (group 0, group 2) per step
    for k in shapes:
        t["p0." + k] = p0[k]
        for i in range(steps):
            t[f"g{i}.{k}"] = grads[i][k]
    t["lrs"] = torch.tensor(lrs, dtype=torch.float32)
    for name, cls, kw in (("sgd", torch.optim.SGD, dict(momentum=0.9, weight_decay=1e-2)),
                          ("adam", torch.optim.Adam, dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2)),
                          ("adamw", torch.optim.AdamW, dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2))):
        ps = {k: v.clone().double().requires_grad_(True) for k, v in p0.items()}
        opt = cls([{"params": [ps["a.weight"], ps["a.bias"]], "lr": lrs[0][0]},
                   {"params": [ps["b.weight"], ps["b.bias"]], "lr": lrs[0][1]}], **kw)
        for i in range(steps):
            for k in shapes:
                ps[k].grad = grads[i][k].double()
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lrs[i]
            opt.step()
        for k in shapes:
            t[f"{name}.{k}"] = ps[k].detach().float()

    # SGDR: 3 cycles of 1, 2, 4 epochs, 5 iterations an epoch, stepped per iteration
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sch = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=2, eta_min=0.0)
    vals = []
    for _ in range(35):
        vals.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    t["sgdr"] = torch.tensor(vals, dtype=torch.float64).float()

    # fbeta on random predictions: 40 images, 17 tags, one "brand" of 7 and one "product" of 10
    probs = torch.rand(40, 17, generator=g)
    target = torch.zeros(40, 17)
    for i in range(40):
        target[i, torch.randint(0, 7, (1,), generator=g)] = 1
        target[i, 7 + torch.randint(0, 10, (1,), generator=g)] = 1
    t["probs"], t["target"] = probs, target
    t["fbeta"] = torch.tensor([float(fbeta_fastai(probs, target, th)) for th in (0.1, 0.2, 0.5)])
    save(os.path.join(outdir, "train.safetensors"), t)
