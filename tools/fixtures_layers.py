"""PyTorch oracle for the kernels (src/kernels/): writes OUTDIR/layers.safetensors.

Every case stores its inputs, PyTorch's outputs and the gradients for a random upstream
gradient dy, all float32, activations NHWC, conv weights OHWI.  The oracle computes in
float64 on the float32 inputs (so the reference is the exact function of the stored inputs to
~1e-16, and the C tests measure only the C kernels' own float32 rounding), then rounds to
float32.  Case parameters go into the safetensors metadata, so the C tests read the cases
from here instead of repeating them:
  meta["conv"] = "name1,name2,..."; meta["conv.NAME"] = "n h w cin cout kh kw sh sw pt pb pl pr groups bias"
  (and likewise "bn", "pool", ... see each section below).
"""
import os

import torch
import torch.nn.functional as F

from oracle_common import save, seeded, to_nhwc, to_ohwi

D = torch.float64


def rnd(*shape, scale=1.0):
    """uniform [-scale, scale) float32 values, returned as float64 (exactly representable)"""
    return ((torch.rand(*shape) * 2 - 1) * scale).float().to(D)


def f32(t):
    """round a float64 tensor to float32 values (the stored inputs must equal the oracle's)"""
    return t.float().to(D)


def same_pad(n, k, s):
    out = (n + s - 1) // s
    tot = max((out - 1) * s + k - n, 0)
    return tot // 2, tot - tot // 2


def conv_cases():
    # name: n, h, w, cin, cout, k, stride, pad ("same" = TF SAME) , groups, bias
    return [
        ("pw1x1", 3, 7, 9, 8, 16, 1, 1, 0, 1, True),
        ("k3s1p1", 3, 7, 9, 8, 12, 3, 1, 1, 1, False),
        ("k3s2p1", 3, 9, 7, 6, 10, 3, 2, 1, 1, True),
        ("stem7x7s2", 1, 23, 21, 3, 8, 7, 2, 3, 1, False),
        ("stem7x7s2_n3", 3, 16, 15, 3, 8, 7, 2, 3, 1, True),
        ("same_k3s2", 3, 8, 10, 4, 6, 3, 2, "same", 1, True),
        ("same_k5s2", 2, 9, 12, 5, 7, 5, 2, "same", 1, False),
        ("pw1x1s2", 3, 9, 9, 8, 16, 1, 2, 0, 1, False),
        ("dw3x3s1", 3, 7, 9, 16, 16, 3, 1, 1, 16, True),
        ("dw3x3s2", 3, 9, 9, 16, 16, 3, 2, 1, 16, False),
        ("dw3x3s2_same", 3, 8, 8, 8, 8, 3, 2, "same", 8, True),
        ("dw5x5s2", 2, 11, 10, 70, 70, 5, 2, 2, 70, True),
        ("dw_mult2", 3, 7, 9, 8, 16, 3, 1, 1, 8, True),
        ("dw_mult2_s2", 1, 7, 9, 4, 8, 3, 2, 1, 4, False),
        ("group2", 3, 7, 9, 8, 12, 3, 1, 1, 2, True),
        ("group4s2", 3, 9, 7, 16, 8, 3, 2, 1, 4, False),
        ("group4_1x1", 3, 5, 6, 16, 16, 1, 1, 0, 4, True),
        ("b1_k3s1", 1, 7, 9, 8, 12, 3, 1, 1, 1, True),
        # 3x3 stride 1 with channels a multiple of 16: oneDNN's Winograd path can take them
        ("wino_k3s1", 3, 10, 12, 32, 48, 3, 1, 1, 1, True),
        ("wino_k3s1_b1", 1, 12, 12, 64, 64, 3, 1, 1, 1, False),
    ]


def make_conv(t, meta):
    names = []
    for (name, n, h, w, cin, cout, k, s, p, g, bias) in conv_cases():
        if p == "same":
            pt, pb = same_pad(h, k, s)
            pl, pr = same_pad(w, k, s)
        else:
            pt = pb = pl = pr = p
        x = rnd(n, cin, h, w).requires_grad_()
        wt = rnd(cout, cin // g, k, k, scale=(cin // g * k * k) ** -0.5).requires_grad_()
        b = rnd(cout).requires_grad_() if bias else None
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), wt, b, stride=s, groups=g)
        dy = rnd(*y.shape)
        y.backward(dy)
        pre = f"conv.{name}."
        t[pre + "x"] = to_nhwc(x)
        t[pre + "w"] = to_ohwi(wt)
        t[pre + "y"] = to_nhwc(y)
        t[pre + "dy"] = to_nhwc(dy)
        t[pre + "dx"] = to_nhwc(x.grad)
        t[pre + "dw"] = to_ohwi(wt.grad)
        if bias:
            t[pre + "b"] = b.detach().float()
            t[pre + "db"] = b.grad.float()
        meta["conv." + name] = f"{n} {h} {w} {cin} {cout} {k} {k} {s} {s} {pt} {pb} {pl} {pr} {g} {int(bias)}"
        names.append(name)
    meta["conv"] = ",".join(names)


def make_bn(t, meta):
    # name: n, h, w, c, input offset (a large mean tests the two-pass variance)
    cases = [("bn_small", 3, 5, 7, 6, 0.0), ("bn_c70", 2, 6, 6, 70, 3.0), ("bn_1x1", 16, 1, 1, 10, 0.5)]
    names = []
    for (name, n, h, w, c, off) in cases:
        eps, mom = 1e-5, 0.1
        x = f32(rnd(n, c, h, w) * 2 + off).requires_grad_()
        gamma = f32(1 + 0.5 * rnd(c)).requires_grad_()
        beta = rnd(c).requires_grad_()
        rm0, rv0 = rnd(c), f32(1 + 0.5 * rnd(c))
        rm, rv = rm0.clone(), rv0.clone()
        y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=mom, eps=eps)
        dy = rnd(*y.shape)
        y.backward(dy)
        pre = f"bn.{name}."
        xm = x.detach().transpose(0, 1).reshape(c, -1)
        t[pre + "x"] = to_nhwc(x)
        t[pre + "gamma"], t[pre + "beta"] = gamma.detach().float(), beta.detach().float()
        t[pre + "rm0"], t[pre + "rv0"] = rm0.float(), rv0.float()
        t[pre + "y"] = to_nhwc(y)
        t[pre + "rm"], t[pre + "rv"] = rm.float(), rv.float()
        t[pre + "save_mean"] = xm.mean(1).float()
        t[pre + "save_invstd"] = (1 / torch.sqrt(xm.var(1, unbiased=False) + eps)).float()
        t[pre + "dy"] = to_nhwc(dy)
        t[pre + "dx"], t[pre + "dgamma"], t[pre + "dbeta"] = to_nhwc(x.grad), gamma.grad.float(), beta.grad.float()
        # eval mode (frozen BN): running statistics rm0/rv0, same x, gamma, beta, dy
        x.grad = gamma.grad = beta.grad = None
        ye = F.batch_norm(x, rm0, rv0, gamma, beta, training=False, eps=eps)
        ye.backward(dy)
        t[pre + "eval_y"] = to_nhwc(ye)
        t[pre + "eval_dx"], t[pre + "eval_dgamma"], t[pre + "eval_dbeta"] = (
            to_nhwc(x.grad), gamma.grad.float(), beta.grad.float())
        meta["bn." + name] = f"{n} {h} {w} {c} {eps} {mom}"
        names.append(name)
    meta["bn"] = ",".join(names)


def make_pool(t, meta):
    # windowed pools: name: kind, n, h, w, c, k, s, p, count_include_pad
    cases = [
        ("max3s2p1", "max", 3, 7, 9, 5, 3, 2, 1, 1),
        ("max3s2p1_c70", "max", 2, 8, 8, 70, 3, 2, 1, 1),
        ("max2s2", "max", 2, 6, 7, 4, 2, 2, 0, 1),
        ("avg3s2p1_incl", "avg", 3, 7, 9, 5, 3, 2, 1, 1),
        ("avg3s2p1_excl", "avg", 3, 7, 9, 5, 3, 2, 1, 0),
        ("avg3s1p1_excl", "avg", 2, 5, 6, 3, 3, 1, 1, 0),
        ("avg2s2", "avg", 2, 6, 8, 6, 2, 2, 0, 1),
    ]
    names = []
    for (name, kind, n, h, w, c, k, s, p, cip) in cases:
        x = rnd(n, c, h, w).requires_grad_()
        if kind == "max":
            y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        else:
            y = F.avg_pool2d(x, k, s, p, count_include_pad=bool(cip))
        dy = rnd(*y.shape)
        y.backward(dy)
        pre = f"pool.{name}."
        t[pre + "x"], t[pre + "y"], t[pre + "dy"], t[pre + "dx"] = to_nhwc(x), to_nhwc(y), to_nhwc(dy), to_nhwc(x.grad)
        if kind == "max":
            t[pre + "argmax"] = to_nhwc(idx.to(D))
        meta["pool." + name] = f"{int(kind == 'max')} {n} {h} {w} {c} {k} {k} {s} {s} {p} {p} {p} {p} {cip}"
        names.append(name)
    meta["pool"] = ",".join(names)
    # global average pool and fastai concat pool: name: n, h, w, c
    gcases = [("g_4x4", 3, 4, 4, 20), ("g_7x5_c70", 2, 7, 5, 70)]
    names = []
    for (name, n, h, w, c) in gcases:
        x = rnd(n, c, h, w).requires_grad_()
        y = F.adaptive_avg_pool2d(x, 1).flatten(1)
        dy = rnd(*y.shape)
        y.backward(dy)
        pre = f"gpool.{name}."
        t[pre + "x"], t[pre + "gap_y"], t[pre + "gap_dy"], t[pre + "gap_dx"] = to_nhwc(x), y.float(), dy.float(), to_nhwc(x.grad)
        x.grad = None
        yc = torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1).flatten(1)
        dyc = rnd(*yc.shape)
        yc.backward(dyc)
        t[pre + "cat_y"], t[pre + "cat_dy"], t[pre + "cat_dx"] = yc.float(), dyc.float(), to_nhwc(x.grad)
        meta["gpool." + name] = f"{n} {h} {w} {c}"
        names.append(name)
    meta["gpool"] = ",".join(names)


def make_eltwise(t, meta):
    n = 1000
    x = rnd(n, scale=8.0)
    x[:4] = torch.tensor([0.0, 6.0, -0.0, 5.999999523162842], dtype=D)  # boundaries
    x.requires_grad_()
    dy = rnd(n)
    for name, fn in (("relu", F.relu), ("relu6", F.relu6)):
        x.grad = None
        y = fn(x)
        y.backward(dy)
        t[f"elt.{name}.y"], t[f"elt.{name}.dx"] = y.float(), x.grad.float()
    a, b = rnd(n).requires_grad_(), rnd(n).requires_grad_()
    y = a + b
    y.backward(dy)
    t["elt.x"], t["elt.dy"], t["elt.a"], t["elt.b"] = x.detach().float(), dy.float(), a.detach().float(), b.detach().float()
    t["elt.add.y"], t["elt.add.da"], t["elt.add.db"] = y.float(), a.grad.float(), b.grad.float()
    meta["elt"] = str(n)


def make_linear(t, meta):
    cases = [("fc_small", 5, 7, 3), ("fc_head", 4, 1024, 37), ("fc_bigbatch", 33, 100, 64)]
    names = []
    for (name, n, fin, fout) in cases:
        x = rnd(n, fin).requires_grad_()
        w = rnd(fout, fin, scale=fin ** -0.5).requires_grad_()
        b = rnd(fout).requires_grad_()
        y = F.linear(x, w, b)
        dy = rnd(n, fout)
        y.backward(dy)
        pre = f"linear.{name}."
        for k, v in (("x", x), ("w", w), ("b", b), ("y", y), ("dy", dy)):
            t[pre + k] = v.detach().float()
        t[pre + "dx"], t[pre + "dw"], t[pre + "db"] = x.grad.float(), w.grad.float(), b.grad.float()
        meta["linear." + name] = f"{n} {fin} {fout}"
        names.append(name)
    meta["linear"] = ",".join(names)


def make_loss(t, meta):
    cases = [("ce_small", 5, 7, 3.0), ("ce_37", 16, 37, 5.0), ("ce_large_logits", 4, 10, 60.0)]
    names = []
    for (name, n, c, scale) in cases:
        z = rnd(n, c, scale=scale).requires_grad_()
        tgt = torch.randint(0, c, (n,))
        loss = F.cross_entropy(z, tgt)
        loss.backward()
        pre = f"loss.{name}."
        t[pre + "logits"], t[pre + "target"] = z.detach().float(), tgt.float()
        t[pre + "loss"], t[pre + "dlogits"] = loss.detach().reshape(1).float(), z.grad.float()
        t[pre + "softmax"] = F.softmax(z.detach(), 1).float()
        meta["loss." + name] = f"ce {n} {c}"
        names.append(name)
    bcases = [("bce_hard", 6, 5, 4.0, False), ("bce_soft", 4, 9, 3.0, True), ("bce_large_logits", 3, 8, 80.0, False)]
    for (name, n, c, scale, soft) in bcases:
        z = rnd(n, c, scale=scale).requires_grad_()
        tgt = torch.rand(n, c).to(D) if soft else (torch.rand(n, c) < 0.3).to(D)
        loss = F.binary_cross_entropy_with_logits(z, tgt)
        loss.backward()
        pre = f"loss.{name}."
        t[pre + "logits"], t[pre + "target"] = z.detach().float(), tgt.float()
        t[pre + "loss"], t[pre + "dlogits"] = loss.detach().reshape(1).float(), z.grad.float()
        t[pre + "sigmoid"] = torch.sigmoid(z.detach()).float()
        meta["loss." + name] = f"bce {n} {c}"
        names.append(name)
    # grouped softmax CE (multi-label tags in groups, one true tag per group): the mean over the
    # groups of F.cross_entropy(z[:, lo:hi], t[:, lo:hi]) with probability targets
    gcases = [("gce_style", 8, 17, (0, 7, 17), 3.0, "hot"), ("gce_soft", 5, 9, (0, 4, 9), 3.0, "soft"),
              ("gce_partial", 4, 12, (2, 5, 10), 60.0, "hot0")]
    for (name, n, c, bounds, scale, kind) in gcases:
        z = rnd(n, c, scale=scale).requires_grad_()
        tgt = torch.zeros(n, c, dtype=D)
        for g in range(len(bounds) - 1):
            lo, hi = bounds[g], bounds[g + 1]
            if kind == "soft":  # mixed targets, as mixup or label smoothing make them
                tgt[:, lo:hi] = torch.softmax(torch.randn(n, hi - lo, dtype=D), 1)
            else:
                tgt[torch.arange(n), lo + torch.randint(0, hi - lo, (n,))] = 1
        if kind == "hot0":
            tgt[1, bounds[0]:bounds[1]] = 0  # a row with no tag in the first group
        loss = sum(F.cross_entropy(z[:, bounds[g]:bounds[g + 1]], tgt[:, bounds[g]:bounds[g + 1]])
                   for g in range(len(bounds) - 1)) / (len(bounds) - 1)
        loss.backward()
        pre = f"loss.{name}."
        t[pre + "logits"], t[pre + "target"] = z.detach().float(), tgt.float()
        t[pre + "loss"], t[pre + "dlogits"] = loss.detach().reshape(1).float(), z.grad.float()
        meta["loss." + name] = f"gce {n} {c} " + ",".join(str(b) for b in bounds)
        names.append(name)
    meta["loss"] = ",".join(names)


def make(outdir):
    seeded(1234)
    t, meta = {}, {}
    make_conv(t, meta)
    make_bn(t, meta)
    make_pool(t, meta)
    make_eltwise(t, meta)
    make_linear(t, meta)
    make_loss(t, meta)
    save(os.path.join(outdir, "layers.safetensors"), t, meta)
