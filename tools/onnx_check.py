"""Oracle for `stylenet export` (tests/cli/test_export.c): one zoo architecture end to end.

    onnx_check.py ARCH WORKDIR        (STYLENET_BIN: the stylenet binary)
    onnx_check.py tflite WORKDIR      the shared TFLite MobileNetV2 (trained weights, 224 px)

1. Builds the PyTorch reference of ARCH with fastai v1's head (create_head(2F, K, ps=0.5,
   lin_ftrs=32): torchvision / efficientnet-lite-pytorch 0.1.0 bodies, or the TF-slim MobileNetV2
   with TensorFlow 'SAME' padding written out here), random weights, batch norms made non-trivial
   (fixtures_models.perturb_bn; for the TF-slim body, whose batch norms are folded into the
   convolutions, a random batch norm calibrated on smooth random photos is folded into each), the last linear
   scaled so that the logits have std 0.25 on the test photos (probabilities neither saturated nor
   uniform; exporting TensorFlow SAME pads top/left-heavy instead of bottom/right-heavy moves
   efficientnet_lite0's by 0.1).  Random deep nets are not all well
   conditioned: the seed is the first of SEEDS whose probabilities PyTorch's float32 pass computes
   within 2.5e-6 of its float64 pass (a quarter of the tolerance below; else the best of them),
   so the comparisons measure the export, not the conditioning.  resnet18, mobilenet_v2_tf and
   efficientnet_lite1 are multi-label with two label groups (sigmoid), the others single-label
   (softmax); resnet18, mobilenet_v2 and efficientnet_lite1 carry a calibration temperature
   (probabilities of logits / T); 6 classes, 64 px.
2. Writes it as a stylenet model file (its state dict + the model-file metadata), three PNG photos
   (two 64x64, one 80x64 so that the centre crop counts), and runs `stylenet export --onnx
   --safetensors` and `stylenet predict --json`.
3. Checks, printing one TAP-like line each ("ok ..." / "not ok ..."; "# ..." notes with the
   measured errors), which the C test turns into its checks:
   - onnx.checker.check_model(full_check=True) passes; input [batch, 3, 64, 64] with a symbolic
     batch; outputs logits and probabilities [batch, 6]; metadata_props state the preprocessing,
     classes, label groups and threshold;
   - ONNX Runtime's probabilities equal predict's within 1e-5, for the three photos as one batch
     of 3 and as a batch of 1 each (dynamic batch), inputs prepared as the metadata says;
   - the exported safetensors loads into a freshly initialised reference model with
     load_state_dict(strict=True), every tensor equal to the original's; its logits (a float64
     pass) equal ONNX Runtime's within 1e-4 of their scale, or 4x PyTorch's own float32 error
     where that is larger (random deep nets are not all that well conditioned).
`tflite` exports $STYLENET_SHARED/weights/mobilenet_v2_1.0_224_quant.tflite with its 1001 ImageNet
labels and compares ONNX Runtime with predict on the three imagenet-check photos (224x224, so no
resize) the same way, and the top-1 classes with SOURCE.txt's (20, 986, 286).  In both modes the
network input is prepared from what the ONNX file's metadata_props say (mean, std, size).
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import load_file, save_file

from fixtures_models import SHARED, AdaptiveConcatPool2d, Flatten, perturb_bn, tf_names, tf_same

SIZE, K, LIN = 64, 6, 32
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MULTI = ("resnet18", "mobilenet_v2_tf", "efficientnet_lite1")
GROUPS = [["brand", 0, 2], ["product", 2, 6]]
SEEDS = (1, 2, 3, 4, 5, 6)
TEMPERATURE = {"resnet18": 1.75, "mobilenet_v2": 0.625, "efficientnet_lite1": 2.5}  # calibrated models; others 1
TF_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1)]
torch.set_num_threads(2)
failures = 0


def check(ok, what):
    global failures
    failures += 0 if ok else 1
    print(("ok " if ok else "not ok ") + what, flush=True)


def fastai_head(nf):
    """fastai v1 create_head(nf * 2, K, lin_ftrs=[LIN], ps=0.5), indices as fastai numbers them"""
    return nn.Sequential(AdaptiveConcatPool2d(), Flatten(), nn.BatchNorm1d(2 * nf), nn.Dropout(0.25),
                         nn.Linear(2 * nf, LIN), nn.ReLU(inplace=True), nn.BatchNorm1d(LIN), nn.Dropout(0.5),
                         nn.Linear(LIN, K))


class Ref(nn.Module):
    """a body's modules under their reference names, then `head`; features(self, x) runs the body"""

    def __init__(self, modules, features, nf):
        super().__init__()
        for name, m in modules:
            self.add_module(name, m)
        self.features_fn = features
        self.head = fastai_head(nf)

    def forward(self, x):
        return self.head(self.features_fn(self, x))


def resnet_features(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def tf_convs():
    """TF-slim MobileNetV2 body convolutions (name, cin, cout, k, stride, groups, relu6), in stylenet's order"""
    names, out, cin, i = tf_names(), [], 32, 0
    out.append((names[0], 3, 32, 3, 2, 1, True))
    i = 1
    for t, c, n, s in TF_BLOCKS:
        for r in range(n):
            hidden = cin * t
            if t != 1:
                out.append((names[i], cin, hidden, 1, 1, 1, True)); i += 1
            out.append((names[i], hidden, hidden, 3, s if r == 0 else 1, hidden, True)); i += 1
            out.append((names[i], hidden, c, 1, 1, 1, False)); i += 1
            cin = c
    out.append((names[i], 320, 1280, 1, 1, 1, True))
    return out


def tf_features(self, x):
    """the TF-slim body; with self.tf_calibrate a generator, each convolution's output is first made
    a trained one's (a batch norm with random affine, calibrated on x, folded into weight and bias)"""
    convs, j = self.tf_convs, 0

    def conv(x):
        nonlocal j
        name, _, _, k, s, groups, relu6 = convs[j]
        j += 1
        (pt, pb), (pl, pr) = tf_same(x.shape[2], k, s), tf_same(x.shape[3], k, s)
        m = self._modules[name]
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), m.weight, m.bias, stride=s, groups=groups)
        g = getattr(self, "tf_calibrate", None)
        if g is not None:
            mean, std = y.mean((0, 2, 3)), y.std((0, 2, 3)) + 1e-3
            gamma = 0.5 + torch.rand(mean.shape, generator=g)
            beta = 0.2 * torch.randn(mean.shape, generator=g)
            m.weight.mul_((gamma / std)[:, None, None, None])
            m.bias.copy_((m.bias - mean) * gamma / std + beta)
            y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), m.weight, m.bias, stride=s, groups=groups)
        return F.relu6(y) if relu6 else y

    x, cin = conv(x), 32
    for t, c, n, _ in TF_BLOCKS:
        for r in range(n):
            y = x
            for _ in range(2 if t == 1 else 3):
                y = conv(y)
            x = x + y if (r > 0 and cin == c) else y
            cin = c
    return conv(x)


def effnet_features(self, x):
    from efficientnet_lite_pytorch import EfficientNet
    return EfficientNet.extract_features(self, x)


def build(arch, seed):
    torch.manual_seed(seed)
    if arch.startswith("resnet"):
        tv = getattr(torchvision.models, arch)()
        mods = [(n, m) for n, m in tv.named_children() if n not in ("avgpool", "fc")]
        return Ref(mods, resnet_features, 2048 if arch == "resnet50" else 512)
    if arch == "mobilenet_v2":
        return Ref([("features", torchvision.models.mobilenet_v2().features)], lambda s, x: s.features(x), 1280)
    if arch == "mobilenet_v2_tf":
        convs = tf_convs()
        model = Ref([(n, nn.Conv2d(ci, co, k, groups=g)) for n, ci, co, k, _, g, _ in convs], tf_features, 1280)
        model.tf_convs = convs
        return model
    from efficientnet_lite_pytorch import EfficientNet
    eff = EfficientNet.from_name(arch.replace("_", "-"), num_classes=K, image_size=[SIZE, SIZE])
    model = Ref([(n, m) for n, m in eff.named_children() if n not in ("_fc", "_avg_pooling", "_dropout")],
                effnet_features, 1280)
    model._global_params = eff._global_params
    return model


def network_input(crops, props):
    """uint8 [n, 3, S, S] photos -> the ONNX input, as metadata_props say: RGB / 255, (x - mean) / std"""
    mean = np.array([float(v) for v in props["mean"].split(",")], np.float32)[:, None, None]
    std = np.array([float(v) for v in props["std"].split(",")], np.float32)[:, None, None]
    size = int(props["input_size"])
    assert crops.shape[1:] == (3, size, size), crops.shape
    return (crops.astype(np.float32) / np.float32(255) - mean) / std


def photos(workdir):
    """three smooth random photos (two 64x64, one 80 wide x 64 high) as PNG; their paths and their
    centre squares (what stylenet crops; no resize at 64 px) as uint8 [3, 3, 64, 64]"""
    g = torch.Generator().manual_seed(7)
    paths, xs = [], []
    for i, (h, w) in enumerate([(SIZE, SIZE), (SIZE, SIZE), (SIZE, SIZE + 16)]):
        img = F.interpolate(torch.rand(1, 3, 9, 11, generator=g), size=(h, w), mode="bilinear", align_corners=False)
        img = (img[0] * 255).round().clamp(0, 255).to(torch.uint8)
        path = os.path.join(workdir, f"photo{i}.png")
        torchvision.io.write_png(img, path)
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        paths.append(path)
        xs.append(img[:, y0:y0 + side, x0:x0 + side].numpy())
    return paths, np.stack(xs)


def write_model(model, arch, path):
    multi = arch in MULTI
    meta = {"stylenet.format": "1", "arch": arch, "head": "fastai", "head_ps": "0.5", "head_lin_ftrs": str(LIN),
            "size": str(SIZE), "mean": ",".join(map(str, MEAN)), "std": ",".join(map(str, STD)),
            "task": "multi" if multi else "single", "threshold": "0.4", "temperature": str(TEMPERATURE.get(arch, 1)),
            "classes": json.dumps([f"tag{k}" for k in range(K)]), "groups": json.dumps(GROUPS if multi else []),
            "history": "{}"}
    state = {k: v for k, v in model.state_dict().items()}
    save_file({k: v.detach().contiguous() for k, v in state.items()}, path, metadata=meta)
    return meta


def run(cmd):
    """runs a stylenet command; its failure ends the script (nothing after it can be checked)"""
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, " ".join(os.path.basename(c) for c in cmd[:2]) + " exits 0" +
          ("" if r.returncode == 0 else ": " + (r.stderr or r.stdout).strip()[-300:]))
    if r.returncode != 0:
        sys.exit(1)
    return r.stdout


def check_onnx_file(path, meta, size=SIZE, k=K):
    """the checker, the input and outputs, the metadata; returns metadata_props"""
    m = onnx.load(path)
    try:
        onnx.checker.check_model(m, full_check=True)
        check(True, "onnx.checker.check_model(full_check=True) passes")
    except Exception as e:  # noqa: BLE001 - the checker's message is the report
        check(False, f"onnx.checker: {e}")
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    check([(i.name, dims(i)) for i in m.graph.input] == [("input", ["batch", 3, size, size])],
          f"input is [batch, 3, {size}, {size}]: {[(i.name, dims(i)) for i in m.graph.input]}")
    check([(o.name, dims(o)) for o in m.graph.output] == [("logits", ["batch", k]), ("probabilities", ["batch", k])],
          f"outputs are logits, probabilities [batch, {k}]")
    props = {p.key: p.value for p in m.metadata_props}
    want = {"input_layout": "NCHW", "input_size": str(size), "task": meta["task"], "mean": meta["mean"],
            "std": meta["std"], "threshold": meta["threshold"]}
    if "temperature" in meta:
        want["temperature"] = "%.9g" % float(meta["temperature"])
    check(all(props.get(k) == v for k, v in want.items()), f"metadata_props state layout, size, normalisation, task, "
          f"threshold, temperature: {[(k, props.get(k)) for k in want]}")
    check(json.loads(props.get("classes", "null")) == json.loads(meta["classes"]) and
          json.loads(props.get("groups", "null")) == json.loads(meta["groups"]), "metadata_props: classes and groups")
    ops = {n.op_type for n in m.graph.node}
    check(("Sigmoid" if meta["task"] == "multi" else "Softmax") in ops and
          not any(a.name == "auto_pad" for n in m.graph.node for a in n.attribute),
          f"final activation for a {meta['task']}-label model; explicit pads only")
    return props


def predict_probs(out, k=K):
    res = json.loads(out)["results"]
    p = np.zeros((len(res), k), np.float32)
    for i, r in enumerate(res):
        for e in r["top"]:
            p[i, e["index"]] = e["probability"]
    return p


def compare_runtime(tag, onx, x, pred):
    """ONNX Runtime on x as one batch and one photo at a time against predict's probabilities"""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(onx, so, providers=["CPUExecutionProvider"])
    logits, probs = sess.run(None, {"input": x})
    singles = np.concatenate([sess.run(["probabilities"], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    err, err1 = np.abs(probs - pred).max(), np.abs(singles - pred).max()
    print(f"# {tag}: |onnxruntime - predict| probabilities: batch of {len(x)} {err:.2e}, batch of 1 {err1:.2e}; "
          f"max prob {probs.max():.3f}, min {probs.min():.3g}")
    check(err <= 1e-5, f"onnxruntime batch of {len(x)} = predict within 1e-5 ({err:.2e})")
    check(err1 <= 1e-5, f"onnxruntime batch of 1 = predict within 1e-5 ({err1:.2e})")
    return logits, probs


def tflite_main(workdir):
    binary = os.environ.get("STYLENET_BIN", "build/stylenet")
    tfl = os.path.join(SHARED, "weights", "mobilenet_v2_1.0_224_quant.tflite")
    labels = os.path.join(SHARED, "weights", "imagenet_labels.txt")
    paths = [os.path.join(SHARED, "weights", "imagenet-check", f) for f in ("bird.png", "sunflower.png", "cat.png")]
    onx = os.path.join(workdir, "mnv2tf.onnx")
    run([binary, "export", "--onnx", onx, "--labels", labels, tfl])
    pred = predict_probs(run([binary, "predict", "--model", tfl, "--json", "--top", "1001", "--threads", "2"] + paths),
                         1001)
    with open(labels) as f:
        names = [ln.rstrip("\n") for ln in f]
    meta = {"task": "single", "mean": "0.5,0.5,0.5", "std": "0.5,0.5,0.5", "threshold": "0",
            "classes": json.dumps(names), "groups": "[]"}
    props = check_onnx_file(onx, meta, 224, 1001)
    crops = np.stack([torchvision.io.read_image(p, torchvision.io.ImageReadMode.RGB).numpy() for p in paths])
    _, probs = compare_runtime("tflite mobilenet_v2_tf", onx, network_input(crops, props), pred)
    top1 = probs.argmax(1).tolist()
    check(top1 == [20, 986, 286], f"onnxruntime top-1 of bird, sunflower, cat = SOURCE.txt's 20, 986, 286 ({top1})")
    return 1 if failures else 0


def trained_like(arch, seed, x):
    """the reference model with random weights made to look trained: batch norms perturbed and
    calibrated, the logits of the photos x scaled to std 0.25"""
    model = build(arch, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    calib = torch.randn(4, 3, SIZE, SIZE, generator=g)
    if arch == "mobilenet_v2_tf":  # on photos like the test's (smooth), as a trained net sees photos
        smooth = F.interpolate(torch.rand(16, 3, 9, 11, generator=g), size=(SIZE, SIZE), mode="bilinear",
                               align_corners=False)
        model.tf_calibrate = g
        with torch.no_grad():
            model.features_fn(model, (smooth - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
        del model.tf_calibrate
    perturb_bn(model, calib, g)
    model.eval()
    with torch.no_grad():
        s = model(x).std()
        model.head[8].weight.mul_(0.25 / s)
        model.head[8].bias.normal_(0, 0.125, generator=g)
    return model


def probabilities(arch, logits):
    return torch.sigmoid(logits) if arch in MULTI else torch.softmax(logits, 1)


def main():
    arch, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    if arch == "tflite":
        return tflite_main(workdir)
    binary = os.environ.get("STYLENET_BIN", "build/stylenet")
    paths, crops = photos(workdir)
    x = torch.from_numpy(network_input(crops, {"mean": ",".join(map(str, MEAN)), "std": ",".join(map(str, STD)),
                                               "input_size": str(SIZE)}))
    best = None
    for seed in SEEDS:  # the first whose probabilities PyTorch's float32 computes within a quarter of 1e-5
        model = trained_like(arch, seed, x)
        T = TEMPERATURE.get(arch, 1)
        with torch.no_grad():
            p32 = probabilities(arch, model(x) / T)
            p64 = probabilities(arch, copy.deepcopy(model).double()(x.double()) / T)
        err = (p32.double() - p64).abs().max().item()
        if best is None or err < best[0]:
            best = (err, seed, model)
        if err <= 2.5e-6:
            break
    err, seed, model = best
    print(f"# {arch}: seed {seed}: PyTorch's float32 error on the probabilities {err:.2e}")
    stn, onx, st = (os.path.join(workdir, f"{arch}.{e}") for e in ("stn", "onnx", "safetensors"))
    meta = write_model(model, arch, stn)
    run([binary, "export", "--onnx", onx, "--safetensors", st, stn])
    pred = predict_probs(run([binary, "predict", "--model", stn, "--json", "--top", str(K), "--threads", "2"] + paths))
    props = check_onnx_file(onx, meta)
    logits, probs = compare_runtime(arch, onx, network_input(crops, props), pred)

    back = build(arch, 99)
    loaded = load_file(st)
    try:
        back.load_state_dict(loaded, strict=True)
        check(True, "exported safetensors loads into the reference model (strict)")
    except RuntimeError as e:
        check(False, f"load_state_dict(strict=True): {str(e)[:300]}")
    orig = model.state_dict()
    same = set(loaded) == set(orig) and all(torch.equal(loaded[k], orig[k]) for k in orig)
    check(same, "every exported tensor equals the original's")
    back.eval()
    with torch.no_grad():
        t32 = back(x).numpy()
        t64 = back.double()(x.double()).numpy()
    scale, f32err = np.abs(t64).max(), np.abs(t32 - t64).max()
    p64 = probabilities(arch, torch.from_numpy(t64) / TEMPERATURE.get(arch, 1)).numpy()
    print(f"# {arch}: against PyTorch float64, probabilities: predict {np.abs(pred - p64).max():.2e}, onnxruntime "
          f"{np.abs(probs - p64).max():.2e}, PyTorch float32 {err:.2e}")
    terr = np.abs(t64 - logits).max()
    tol = max(1e-4 * scale, 4 * f32err)
    print(f"# {arch}: |pytorch float64 - onnxruntime| logits {terr:.2e} (scale {scale:.2f}; PyTorch's own float32 "
          f"error {f32err:.2e})")
    check(terr <= tol, f"reloaded PyTorch logits (float64) = onnxruntime within {tol:.1e} = max(1e-4 of scale, "
          f"4 x PyTorch's float32 error) ({terr:.2e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
