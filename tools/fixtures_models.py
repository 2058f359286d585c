"""PyTorch reference data for the model zoo (tests/models/).

For each of resnet18, resnet34, resnet50, mobilenet_v2 (torchvision 0.14) and resnet34 + the fastai
v1 head, with 10 classes, a batch of 2 images (4 for the fastai head, whose BatchNorm1d on 2 samples
only outputs +-1) of 64x80 (H x W; not square, so a swapped axis shows):

  models_<tag>_state.safetensors   the model's state_dict(), written by safetensors.torch.save_file
                                   (PyTorch layout: conv weights OIHW, num_batches_tracked int64).
                                   Seeded random init as torchvision's, then BN made non-trivial:
                                   weight ~ U(0.5, 1.5), bias ~ 0.2 N(0,1), running statistics
                                   calibrated on a random batch (momentum 1) and jittered
                                   (mean += 0.1 N * std, var *= U(0.7, 1.4)).
  models_<tag>_ref.safetensors     x        [n, 64, 80, 3] NHWC input, N(0,1)
                                   target   [n] class indices as float32
                                   logits_eval   [n, 10]  model.eval()(x)
                                   logits_train  [n, 10]  model.train()(x), dropout p set to 0
                                   loss     [1]  F.cross_entropy(logits_train, target) (mean)
                                   grad.<param>  d loss / d param after loss.backward() in train
                                                 mode, in stylenet's storage layout (4-D conv
                                                 weights OHWI, everything else as PyTorch)
                                   after.<bn>.running_mean / .running_var  after the train forward
                                   f32err.<key>  [1] PyTorch's own float32 error on <key>
                                   All values come from PyTorch's float64 pass of the same model
                                   (see reference()); metadata "seed" and the conditioning found.
  The seed is the first of a short list whose float32 noise stays within half the tests' default
  tolerance (well_conditioned()); the lists start at seeds found that way.

The fastai model (tag resnet34_fastai) is torchvision resnet34 without avgpool/fc plus fastai v1's
create_head(1024, 10, ps=0.5) written out by hand: [AdaptiveConcatPool2d, Flatten, BatchNorm1d,
Dropout(0.25), Linear(1024, 512), ReLU, BatchNorm1d, Dropout(0.5), Linear(512, 10)], named
head.<index>; linears initialised as fastai's apply_init(kaiming_normal_) (bias 0).  Its state file
holds the ps=0.5 names (head.2/4/6/8).  The train pass runs the same modules without the dropouts,
which is what fastai builds for ps=0 (bn_drop_lin leaves out Dropout(0)), so its grad.* and after.*
keys use the ps=0 names (head.2/3/5/6).

mobilenet_v2_tf (TF-slim layout of /work/shared/weights/mobilenet_v2_1.0_224_quant.tflite):
  models_mnv2tf_convs.safetensors  convs [53, 17]: the file's CONV_2D / DEPTHWISE_CONV_2D operators
                                   in order: depthwise, cout, kh, kw, cin, sh, sw, TF 'SAME' pads
                                   (top, bottom, left, right, computed as TensorFlow does), in_h,
                                   in_w, out_h, out_w, fused activation (3 = RELU6), has bias.
  models_mnv2tf_state.safetensors  the file's weights dequantised (w = scale * (q - zero_point),
                                   b = q * scale) under stylenet's TF names, PyTorch layout.
  models_mnv2tf_ref.safetensors    x [3, 224, 224, 3] the imagenet-check photos (bird, sunflower,
                                   cat) as x / 127.5 - 1; logits [3, 1001] of a float forward pass
                                   in PyTorch with TensorFlow 'SAME' padding; top1 [3].  The oracle
                                   asserts SOURCE.txt's top-1 (20, 986, 286) before writing.
"""
import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

from oracle_common import save, seeded, to_nhwc

N, H, W, CLASSES = 2, 64, 80, 10
N_FASTAI = 4  # BatchNorm1d in train mode on 2 samples only gives +-1: its gradient is mostly cancellation
SHARED = os.environ.get("STYLENET_SHARED",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))


def perturb_bn(model, calib, g):
    """BN affine random; running stats calibrated on `calib` then jittered."""
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=g))
            bn.bias.copy_(0.2 * torch.randn(bn.bias.shape, generator=g))
            bn.momentum = 1.0
        model.train()
        model(calib)
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.1 * torch.randn(bn.running_mean.shape, generator=g) * bn.running_var.sqrt())
            bn.running_var.mul_(0.7 + 0.7 * torch.rand(bn.running_var.shape, generator=g))


def run(model, train_model, x, target, named_params, named_bns):
    """eval logits, train logits/loss/grads, running stats after; train_model shares model's modules"""
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    train_model.train()
    model.zero_grad()
    logits_train = train_model(x)
    loss = F.cross_entropy(logits_train, target)
    loss.backward()
    out = {
        "logits_eval": logits_eval.detach(),
        "logits_train": logits_train.detach(),
        "loss": loss.detach().reshape(1),
    }
    for name, p in named_params():
        out["grad." + name] = p.grad.detach().permute(0, 2, 3, 1) if p.grad.dim() == 4 else p.grad.detach()
    for name, bn in named_bns():
        out[f"after.{name}.running_mean"] = bn.running_mean.detach().clone()
        out[f"after.{name}.running_var"] = bn.running_var.detach().clone()
    return out


def reference(model, train_model, x, target, named_params, named_bns):
    """The reference is PyTorch's pass in float64 (the exact math, rounded to float32 once), so a
    tolerance measures our float32 error, not the sum of ours and PyTorch's.  PyTorch's float32
    pass is run four times, on x and on x * (1 + 1e-6 N(0,1)) for three noise draws, and the largest
    error against float64 is stored per tensor as f32err.<key> (max abs): how much this model
    amplifies float32 rounding in that tensor (a ReLU or max-pool decision that flips under noise
    moves a gradient by a finite amount).  named_params/named_bns are functions of (model,
    train_model) so they see either copy."""
    model64, train64 = copy.deepcopy((model, train_model))
    model64.double()
    variants = []
    for noise_seed in (None, 1, 2, 3):
        m32, t32 = copy.deepcopy((model, train_model))
        xv = x if noise_seed is None else \
            x * (1 + 1e-6 * torch.randn(x.shape, generator=torch.Generator().manual_seed(noise_seed)))
        variants.append(run(m32, t32, xv, target, named_params(m32, t32), named_bns(m32, t32)))
    out64 = run(model64, train64, x.double(), target, named_params(model64, train64), named_bns(model64, train64))
    out = {"x": to_nhwc(x), "target": target.float()}
    for k, v in out64.items():
        out[k] = v.float().contiguous()
        out["f32err." + k] = max((o[k].double() - v).abs().max() for o in variants).reshape(1).float()
    return out


def conditioning(ref):
    """worst f32err relative to the tests' default tolerance (rel 1e-3 of the tensor's max + 1e-5 x
    the largest gradient for gradients, rel 1e-4 for logits, loss and running statistics)"""
    gmax = max(v.abs().max().item() for k, v in ref.items() if k.startswith("grad."))
    worst, name = 0.0, ""
    for k, v in ref.items():
        if not k.startswith("f32err."):
            continue
        key = k[len("f32err."):]
        s = ref[key].abs().max().item()
        tol = 1e-3 * s + 1e-5 * gmax if key.startswith("grad.") else 1e-4 * s
        if v.item() / tol > worst:
            worst, name = v.item() / tol, key
    return worst, name


def well_conditioned(outdir, tag, build, seeds):
    """builds the case for each seed until PyTorch's own float32 noise uses at most half of the
    default tolerance everywhere (else keeps the best seed); writes state and reference"""
    best = None
    for seed in seeds:
        state, ref = build(seed)
        worst, name = conditioning(ref)
        print(f"  {tag} seed {seed}: PyTorch float32 noise / tolerance = {worst:.3g} ({name})", flush=True)
        if best is None or worst < best[0]:
            best = (worst, seed, state, ref)
        if worst <= 0.5:
            break
    worst, seed, state, ref = best
    save_file(state, os.path.join(outdir, f"models_{tag}_state.safetensors"))
    save(os.path.join(outdir, f"models_{tag}_ref.safetensors"), ref,
         {"seed": str(seed), "torch_f32_noise_over_tolerance": f"{worst:.3g}", "dropout_in_train": "0"})


def torchvision_model(outdir, tag, ctor, seeds):
    def build(seed):
        g = seeded(seed)
        model = ctor(num_classes=CLASSES)
        perturb_bn(model, torch.randn(4, 3, H, W, generator=g), g)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        x = torch.randn(N, 3, H, W, generator=g)
        target = torch.randint(0, CLASSES, (N,), generator=g)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0  # train-mode comparison without random masks
        return state, reference(model, model, x, target, lambda m, _: m.named_parameters,
                                lambda m, _: lambda: [(n, b) for n, b in m.named_modules()
                                                      if isinstance(b, nn.BatchNorm2d)])
    well_conditioned(outdir, tag, build, seeds)


class AdaptiveConcatPool2d(nn.Module):
    """fastai v1: cat([max, avg]) with output size 1"""

    def __init__(self):
        super().__init__()
        self.ap, self.mp = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class FastaiModel(nn.Module):
    """torchvision ResNet body (children[:-2]) + a head, returning logits"""

    def __init__(self, resnet, head):
        super().__init__()
        self.r, self.head = resnet, head

    def forward(self, x):
        r = self.r
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        x = r.layer4(r.layer3(r.layer2(r.layer1(x))))
        return self.head(x)


def fastai_model(outdir, seeds):
    def build(seed):
        g = seeded(seed)
        r = torchvision.models.resnet34(num_classes=CLASSES)
        nf, ps = 512 * 2, 0.5
        head = nn.Sequential(AdaptiveConcatPool2d(), Flatten(),
                             nn.BatchNorm1d(nf), nn.Dropout(ps / 2), nn.Linear(nf, 512), nn.ReLU(inplace=True),
                             nn.BatchNorm1d(512), nn.Dropout(ps), nn.Linear(512, CLASSES))
        for m in head.modules():  # fastai apply_init(model[1], nn.init.kaiming_normal_): not the BNs
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                m.bias.data.fill_(0.0)
        model = FastaiModel(r, head)
        perturb_bn(model, torch.randn(8, 3, H, W, generator=g), g)
        state = {k: v.detach().clone() for k, v in r.state_dict().items() if not k.startswith("fc.")}
        state.update({"head." + k: v.detach().clone() for k, v in head.state_dict().items()})
        # ps = 0: fastai's bn_drop_lin leaves the Dropout modules out, so the indices shift
        head0 = nn.Sequential(head[0], head[1], head[2], head[4], head[5], head[6], head[8])
        model0 = FastaiModel(r, head0)
        x = torch.randn(N_FASTAI, 3, H, W, generator=g)
        target = torch.randint(0, CLASSES, (N_FASTAI,), generator=g)

        def params(_, m0):
            return lambda: ([(k, p) for k, p in m0.r.named_parameters() if not k.startswith("fc.")] +
                            [("head." + k, p) for k, p in m0.head.named_parameters()])

        def bns(_, m0):
            return lambda: ([(n, b) for n, b in m0.r.named_modules() if isinstance(b, nn.BatchNorm2d)] +
                            [("head." + n, b) for n, b in m0.head.named_modules() if isinstance(b, nn.BatchNorm1d)])

        return state, reference(model, model0, x, target, params, bns)
    well_conditioned(outdir, "resnet34_fastai", build, seeds)


# ---------------------------------------------------------------- TF-slim MobileNetV2 from TFLite

def tf_same(inp, k, s):
    out = -(-inp // s)
    total = max((out - 1) * s + k - inp, 0)
    return total // 2, total - total // 2


def tflite_convs():
    import tflite
    path = os.path.join(SHARED, "weights", "mobilenet_v2_1.0_224_quant.tflite")
    buf = open(path, "rb").read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        bc = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if bc not in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
            continue
        dw = bc == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
        o = op.BuiltinOptions()
        opt = tflite.DepthwiseConv2DOptions() if dw else tflite.Conv2DOptions()
        opt.Init(o.Bytes, o.Pos)
        assert opt.Padding() == tflite.Padding.SAME
        tin, tw, tb = (g.Tensors(op.Inputs(j)) for j in range(3))
        tout = g.Tensors(op.Outputs(0))

        def deq(t):
            q = t.Quantization()
            raw = model.Buffers(t.Buffer()).DataAsNumpy()
            dt = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT32: np.int32}[t.Type()]
            v = np.frombuffer(raw.tobytes(), dtype=dt).astype(np.float64).reshape(t.ShapeAsNumpy())
            assert q.ScaleLength() == 1
            return ((v - q.ZeroPoint(0)) * q.Scale(0)).astype(np.float32)

        w, b = deq(tw), deq(tb)  # w: conv [O, KH, KW, I], depthwise [1, KH, KW, C]
        w_oihw = w.transpose(3, 0, 1, 2) if dw else w.transpose(0, 3, 1, 2)
        _, ih, iw, _ = tin.ShapeAsNumpy()
        _, oh, ow, cout = tout.ShapeAsNumpy()
        kh, kw = w_oihw.shape[2:]
        sh, sw = opt.StrideH(), opt.StrideW()
        pt, pb = tf_same(ih, kh, sh)
        pl, pr = tf_same(iw, kw, sw)
        ops.append(dict(dw=dw, w=w_oihw, b=b, cout=cout, kh=kh, kw=kw, cin=w_oihw.shape[1], sh=sh, sw=sw,
                        pad=(pt, pb, pl, pr), ih=ih, iw=iw, oh=oh, ow=ow, act=opt.FusedActivationFunction(),
                        name=tw.Name().decode()))
    return ops


def tf_names():
    names = ["MobilenetV2/Conv", "MobilenetV2/expanded_conv/depthwise", "MobilenetV2/expanded_conv/project"]
    for i in range(1, 17):
        names += [f"MobilenetV2/expanded_conv_{i}/{s}" for s in ("expand", "depthwise", "project")]
    return names + ["MobilenetV2/Conv_1", "MobilenetV2/Logits/Conv2d_1c_1x1"]


def mobilenet_v2_tf(outdir):
    ops = tflite_convs()
    names = tf_names()
    assert len(ops) == len(names) == 53
    for op, name in zip(ops, names):  # the file's own scope names agree with ours
        assert op["name"].startswith(name + "/"), (op["name"], name)
    table = [[op["dw"], op["cout"], op["kh"], op["kw"], op["cin"], op["sh"], op["sw"], *op["pad"],
              op["ih"], op["iw"], op["oh"], op["ow"], op["act"], 1] for op in ops]
    save(os.path.join(outdir, "models_mnv2tf_convs.safetensors"),
         {"convs": torch.tensor(table, dtype=torch.float32)})
    state = {}
    for op, name in zip(ops, names):
        state[name + ".weight"] = torch.from_numpy(op["w"].copy())
        state[name + ".bias"] = torch.from_numpy(op["b"].copy())
    save_file(state, os.path.join(outdir, "models_mnv2tf_state.safetensors"))

    # float forward, TensorFlow semantics, following the operator list (residual adds per TF-slim)
    def conv(x, i):
        op = ops[i]
        pt, pb, pl, pr = op["pad"]
        x = F.pad(x, (pl, pr, pt, pb))
        groups = x.shape[1] if op["dw"] else 1
        y = F.conv2d(x, state[names[i] + ".weight"], state[names[i] + ".bias"], stride=op["sh"], groups=groups)
        return F.relu6(y) if op["act"] == 3 else y

    def forward(x):
        i = 0
        x = conv(x, i); i += 1
        cin = 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
            for r in range(n):
                y = x
                for _ in range(2 if t == 1 else 3):
                    y = conv(y, i); i += 1
                x = x + y if (r > 0 and cin == c) else y
                cin = c
        x = conv(x, i); i += 1
        x = x.mean((2, 3), keepdim=True)
        return conv(x, i).flatten(1)

    imgs = []
    for fn in ("bird.png", "sunflower.png", "cat.png"):
        img = torchvision.io.read_image(os.path.join(SHARED, "weights", "imagenet-check", fn),
                                        torchvision.io.ImageReadMode.RGB)
        imgs.append(img.float() / 127.5 - 1)
    x = torch.stack(imgs)
    with torch.no_grad():
        logits = forward(x)
    top1 = logits.argmax(1)
    assert top1.tolist() == [20, 986, 286], top1.tolist()
    save(os.path.join(outdir, "models_mnv2tf_ref.safetensors"),
         {"x": to_nhwc(x), "logits": logits, "top1": top1.float()})


def make(outdir):
    # Input noise of 1e-6 (not 1e-7) so that the conditioning estimate also covers the rounding
    # differences of fused multiply-adds (-ffp-contract=fast), which flipped a ReLU decision of the
    # fastai case at seed 1041 with 1e-7 noise reporting it well conditioned.
    # The first seed of each list was found well conditioned by the search in well_conditioned()
    # (resnet34: 34-37 were not; fastai: 1034-1040 were worse); for resnet50 no seed of 50-55 was
    # (ReLU decisions within float32 noise on a batch of 2: see the tests' tolerance), so it keeps
    # its least noisy seed, 51, and the tests fall back to 4 x PyTorch's own float32 error there.
    torch.set_grad_enabled(True)
    torchvision_model(outdir, "resnet18", torchvision.models.resnet18, [18, 19, 20])
    torchvision_model(outdir, "resnet34", torchvision.models.resnet34, [38, 39, 40])
    torchvision_model(outdir, "resnet50", torchvision.models.resnet50, [51])
    torchvision_model(outdir, "mobilenet_v2", torchvision.models.mobilenet_v2, [2, 3, 4])
    fastai_model(outdir, [1041, 1042, 1043, 1044, 1045])
    mobilenet_v2_tf(outdir)
