"""A PyTorch rendition of the TFLite MobileNetV2 graph, read with the PyPI `tflite` package
(independently of stylenet's C reader): every constant dequantised with numpy, every operator
run with torch.nn.functional in float32, TF 'SAME' padding done with F.pad.  Writes the logits
(input of the final SOFTMAX) for the three check photos, preprocessed as the model wants
(RGB, x / 127.5 - 1), to tflite_logits.safetensors."""
import os

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from PIL import Image

from oracle_common import save

SHARED = os.environ.get("STYLENET_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
OP = tflite.BuiltinOperator


def opcode(model, op):
    c = model.OperatorCodes(op.OpcodeIndex())
    return max(c.BuiltinCode(), c.DeprecatedBuiltinCode())


def const(model, sg, i):
    t = sg.Tensors(i)
    buf = model.Buffers(t.Buffer()).DataAsNumpy()
    if isinstance(buf, int) or buf.size == 0:
        return None
    dt = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8,
          tflite.TensorType.INT32: np.int32, tflite.TensorType.FLOAT32: np.float32,
          tflite.TensorType.INT64: np.int64}[t.Type()]
    q = np.frombuffer(buf.tobytes(), dtype=dt).reshape(t.ShapeAsNumpy())
    if dt == np.float32:
        return q.astype(np.float32)
    qp = t.Quantization()
    scale = qp.ScaleAsNumpy() if qp is not None and qp.ScaleLength() else None
    if scale is None:
        return q
    zp = qp.ZeroPointAsNumpy() if qp.ZeroPointLength() else np.zeros_like(scale, dtype=np.int64)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[qp.QuantizedDimension()] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (scale.astype(np.float64) * (q.astype(np.int64) - zp.astype(np.int64))).astype(np.float32)


def same_pad(x, k, s):
    """TF 'SAME' for NCHW x: out = ceil(in / s), extra padding at the bottom/right."""
    pads = []
    for dim, kk, ss in ((x.shape[3], k[1], s[1]), (x.shape[2], k[0], s[0])):
        out = -(-dim // ss)
        total = max((out - 1) * ss + kk - dim, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def act(x, a):
    if a == tflite.ActivationFunctionType.RELU6:
        return x.clamp(0, 6)
    if a == tflite.ActivationFunctionType.RELU:
        return x.clamp(min=0)
    assert a == tflite.ActivationFunctionType.NONE, a
    return x


def run(model, x):
    sg = model.Subgraphs(0)
    vals = {sg.Inputs(0): x}  # NCHW float
    logits = None
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = opcode(model, op)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        tab = op.BuiltinOptions()
        if code in (OP.CONV_2D, OP.DEPTHWISE_CONV_2D):
            o = tflite.Conv2DOptions() if code == OP.CONV_2D else tflite.DepthwiseConv2DOptions()
            o.Init(tab.Bytes, tab.Pos)
            w = torch.from_numpy(const(model, sg, ins[1]))
            b = torch.from_numpy(const(model, sg, ins[2]).astype(np.float32))
            if code == OP.CONV_2D:
                w, groups = w.permute(0, 3, 1, 2), 1          # OHWI -> OIHW
            else:
                w = w.permute(3, 0, 1, 2)                      # [1,KH,KW,C] -> [C,1,KH,KW]
                groups = w.shape[0]
            s = (o.StrideH(), o.StrideW())
            xi = vals[ins[0]]
            if o.Padding() == tflite.Padding.SAME:
                xi = same_pad(xi, w.shape[2:], s)
            vals[out] = act(F.conv2d(xi, w.contiguous(), b, stride=s, groups=groups), o.FusedActivationFunction())
        elif code == OP.ADD:
            o = tflite.AddOptions()
            o.Init(tab.Bytes, tab.Pos)
            vals[out] = act(vals[ins[0]] + vals[ins[1]], o.FusedActivationFunction())
        elif code == OP.AVERAGE_POOL_2D:
            o = tflite.Pool2DOptions()
            o.Init(tab.Bytes, tab.Pos)
            assert o.Padding() == tflite.Padding.VALID
            vals[out] = F.avg_pool2d(vals[ins[0]], (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW()))
        elif code == OP.RESHAPE:
            vals[out] = vals[ins[0]].reshape(vals[ins[0]].shape[0], -1)
        elif code == OP.SOFTMAX:
            logits = vals[ins[0]]
            vals[out] = torch.softmax(logits, 1)
        else:
            raise RuntimeError(f"operator {i}: unsupported code {code}")
    return logits


def make(outdir):
    path = os.path.join(SHARED, "weights", "mobilenet_v2_1.0_224_quant.tflite")
    model = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
    names = ["bird", "sunflower", "cat"]
    imgs = []
    for n in names:
        a = np.asarray(Image.open(os.path.join(SHARED, "weights", "imagenet-check", n + ".png")).convert("RGB"),
                       dtype=np.float32)
        imgs.append(a / 127.5 - 1.0)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        logits = run(model, x)
    out = {"logits": logits.float(), "input": x.permute(0, 2, 3, 1).contiguous()}
    save(os.path.join(outdir, "tflite_logits.safetensors"), out,
         {"images": ",".join(names), "top1": ",".join(str(int(i)) for i in logits.argmax(1))})
    print("tflite rendition top-1:", logits.argmax(1).tolist())
