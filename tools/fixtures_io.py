"""Reference data for the io/ tests (tests/io/): files written by the official readers/writers.

safetensors: files written by Python's safetensors package (numpy and torch front ends) covering
every dtype, metadata, empty tensors, scalars and a file without tensors; the C reader must read
them back exactly and its writer must reproduce them byte for byte.

tflite: for both MobileNetV2 files in $STYLENET_SHARED/weights, every tensor that has constant
data is dequantised with the PyPI `tflite` flatbuffer package + numpy and stored as F32 tensor
"t<index>"; tensor descriptions (name, type, shape, buffer, quantisation counts) and the operator
list (builtin code, inputs, outputs, options) go into the metadata as JSON.
"""
import json
import os

import numpy as np
import torch
from safetensors.numpy import save_file as np_save
from safetensors.torch import save_file as pt_save

here = os.path.dirname(os.path.abspath(__file__))


def shared_dir():
    d = os.environ.get("STYLENET_SHARED")
    if d:
        return d
    return os.path.join(here, "..", "..", "shared")


# ---------------------------------------------------------------- safetensors

def float_pattern(n):
    """(i - 7) * 0.375: exact in F16, BF16, F32 and F64, so the C test can regenerate it"""
    return (np.arange(n, dtype=np.float64) - 7) * 0.375


def int_pattern(n, lo, hi):
    """deterministic integers covering the range ends: the C test regenerates them"""
    i = np.arange(n, dtype=np.int64)
    span = hi - lo + 1
    return lo + (i * 7919 + 3) % span


def st_fixtures(out):
    shape = (2, 3, 4)
    n = 24
    t = {
        "f64": float_pattern(n).reshape(shape),
        "f32": float_pattern(n).astype(np.float32).reshape(shape),
        "f16": float_pattern(n).astype(np.float16).reshape(shape),
        "i64": int_pattern(n, -2**40, 2**40).reshape(shape),
        "i32": int_pattern(n, -2**31, 2**31 - 1).astype(np.int32).reshape(shape),
        "i16": int_pattern(n, -2**15, 2**15 - 1).astype(np.int16).reshape(shape),
        "i8": int_pattern(n, -128, 127).astype(np.int8).reshape(shape),
        "u8": int_pattern(n, 0, 255).astype(np.uint8).reshape(shape),
        "bool": (int_pattern(n, 0, 1) == 1).reshape(shape),
    }
    np_save(t, os.path.join(out, "io_st_dtypes_np.safetensors"))
    # BF16 only exists in torch; also all 65536 F16 bit patterns and random BF16 patterns with
    # torch's conversion to float32 as the reference
    bits = torch.arange(65536, dtype=torch.int32).to(torch.int16)
    f16_all = bits.view(torch.float16)
    g = torch.Generator().manual_seed(5)
    bf_bits = torch.randint(-32768, 32767, (4096,), generator=g, dtype=torch.int16)
    bf_bits[:8] = torch.tensor([0, -32768, 0x7F80, -128, 0x7FC0, 1, 0x3F80, -16512], dtype=torch.int16)
    bf16 = bf_bits.view(torch.bfloat16)
    pt = {
        "bf16": torch.from_numpy(float_pattern(n).astype(np.float32)).to(torch.bfloat16).reshape(shape),
        "f16_all": f16_all,
        "f16_all_ref": f16_all.float(),
        "bf16_rand": bf16,
        "bf16_rand_ref": bf16.float(),
        "f64_rand": torch.randn(1000, generator=g, dtype=torch.float64) * 1e3,
    }
    pt["f64_rand_ref"] = pt["f64_rand"].float()
    pt_save(pt, os.path.join(out, "io_st_torch.safetensors"))
    # metadata: one key (byte-identical rewrite possible) and several keys with escapes/unicode
    np_save({"w": float_pattern(6).astype(np.float32).reshape(2, 3)}, os.path.join(out, "io_st_meta1.safetensors"),
            metadata={"format": "pt"})
    np_save({"w": float_pattern(6).astype(np.float32).reshape(2, 3), "b": np.zeros(3, np.float32)},
            os.path.join(out, "io_st_meta.safetensors"),
            metadata={"arch": "resnet34", "classes": "cat,dog", "quote": 'a "b" \\ c\n\t\u00e9\u4e2d',
                      "empty": ""})
    # empty tensors and a scalar
    np_save({"empty": np.zeros((0, 3), np.float32), "empty1": np.zeros((0,), np.int64),
             "scalar": np.array(2.5, np.float32), "scalar_i64": np.array(7, np.int64),
             "x": np.ones((1, 1, 1, 1), np.float16)},
            os.path.join(out, "io_st_empty.safetensors"))
    np_save({}, os.path.join(out, "io_st_none.safetensors"))


# ---------------------------------------------------------------- tflite

def tfl_fixtures(out):
    import tflite
    from tflite.BuiltinOptions import BuiltinOptions as BO

    np_types = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16,
                9: np.int8, 10: np.float64}
    files = {"quant": "mobilenet_v2_1.0_224_quant.tflite", "ptq": "tf2_mobilenet_v2_1.0_224_ptq.tflite"}
    for key, fn in files.items():
        path = os.path.join(shared_dir(), "weights", fn)
        buf = open(path, "rb").read()
        m = tflite.Model.GetRootAsModel(buf, 0)
        g = m.Subgraphs(0)
        tensors, descs = {}, []
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            shape = [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else []
            q = t.Quantization()
            scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
            zp = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
            qd = q.QuantizedDimension() if q is not None else 0
            data = m.Buffers(t.Buffer()).DataAsNumpy()
            has = not isinstance(data, int) and len(data) > 0
            descs.append({"name": t.Name().decode("utf-8", "replace"), "type": t.Type(), "shape": shape,
                          "buffer": t.Buffer(), "data": int(len(data)) if has else 0,
                          "n_scale": 0 if scale is None else len(scale), "qdim": qd})
            if not has:
                continue
            arr = np.frombuffer(data.tobytes(), dtype=np_types[t.Type()]).reshape(shape)
            if t.Type() in (0, 1, 10):
                val = arr.astype(np.float32)
            elif scale is None:
                val = arr.astype(np.float32)
            else:
                z = zp if zp is not None else np.zeros(len(scale), np.int64)
                if len(scale) == 1:
                    val = scale.astype(np.float64)[0] * (arr.astype(np.int64) - z[0])
                else:
                    bshape = [1] * len(shape)
                    bshape[qd] = len(scale)
                    val = (scale.astype(np.float64).reshape(bshape) *
                           (arr.astype(np.int64) - z.astype(np.int64).reshape(bshape)))
                val = val.astype(np.float32)
            tensors[f"t{i}"] = np.ascontiguousarray(val)
        ops = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            oc = m.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            d = {"opcode": int(code), "inputs": [int(x) for x in op.InputsAsNumpy()],
                 "outputs": [int(x) for x in op.OutputsAsNumpy()], "options": int(op.BuiltinOptionsType())}
            ot, tab = op.BuiltinOptionsType(), op.BuiltinOptions()
            if ot == BO.Conv2DOptions:
                o = tflite.Conv2DOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(padding=o.Padding(), stride=[o.StrideW(), o.StrideH()], act=o.FusedActivationFunction(),
                         dilation=[o.DilationWFactor(), o.DilationHFactor()])
            elif ot == BO.DepthwiseConv2DOptions:
                o = tflite.DepthwiseConv2DOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(padding=o.Padding(), stride=[o.StrideW(), o.StrideH()], act=o.FusedActivationFunction(),
                         dilation=[o.DilationWFactor(), o.DilationHFactor()], depth_multiplier=o.DepthMultiplier())
            elif ot == BO.Pool2DOptions:
                o = tflite.Pool2DOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(padding=o.Padding(), stride=[o.StrideW(), o.StrideH()], act=o.FusedActivationFunction(),
                         filter=[o.FilterWidth(), o.FilterHeight()])
            elif ot == BO.AddOptions:
                o = tflite.AddOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(act=o.FusedActivationFunction())
            elif ot == BO.SoftmaxOptions:
                o = tflite.SoftmaxOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(beta=float(o.Beta()))
            elif ot == BO.ReshapeOptions:
                o = tflite.ReshapeOptions()
                o.Init(tab.Bytes, tab.Pos)
                d.update(new_shape=[int(x) for x in o.NewShapeAsNumpy()] if o.NewShapeLength() else [])
            ops.append(d)
        data_end = 0
        for k in range(m.BuffersLength()):
            bb = m.Buffers(k)
            if bb.DataLength():
                data_end = max(data_end, bb._tab.Vector(bb._tab.Offset(4)) + bb.DataLength())
        meta = {"file": fn, "version": str(m.Version()), "data_end": str(data_end), "n_tensors": str(g.TensorsLength()),
                "n_buffers": str(m.BuffersLength()), "inputs": json.dumps([int(x) for x in g.InputsAsNumpy()]),
                "outputs": json.dumps([int(x) for x in g.OutputsAsNumpy()]),
                "ops": json.dumps(ops), "tensors": json.dumps(descs)}
        np_save(tensors, os.path.join(out, f"io_tfl_{key}.safetensors"), metadata=meta)


# ---------------------------------------------------------------- a tiny TFLite model

def tiny_tflite():
    """A small valid TFLite file (written with the flatbuffers builder, schema field numbers from
    tensorflow/lite/schema/schema.fbs) exercising every parsed table: uint8 per-tensor conv,
    int8 per-channel depthwise, int32 bias, float constant, average pool, add, reshape, softmax,
    a custom op code, a description and a buffer stored with offset/size outside the FlatBuffer.
    The C test knows its contents (tests/io/test_tflite.c)."""
    import flatbuffers
    b = flatbuffers.Builder(1024)

    def vec(kind, xs):
        size = {"i32": 4, "u8": 1, "i64": 8, "f32": 4, "off": 4}[kind]
        b.StartVector(size, len(xs), size)
        for x in reversed(xs):
            {"i32": b.PrependInt32, "u8": b.PrependUint8, "i64": b.PrependInt64, "f32": b.PrependFloat32,
             "off": b.PrependUOffsetTRelative}[kind](x)
        return b.EndVector()

    def table(fields):
        """fields: list of (slot, kind, value); offsets must be created beforehand"""
        b.StartObject(1 + max(f[0] for f in fields) if fields else 0)
        for slot, kind, v in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, v, 0)
            elif kind == "i32":
                b.PrependInt32Slot(slot, v, -12345)
            elif kind == "u32":
                b.PrependUint32Slot(slot, v, 12345)
            elif kind == "i8":
                b.PrependInt8Slot(slot, v, -123)
            elif kind == "u8":
                b.PrependUint8Slot(slot, v, 123)
            elif kind == "f32":
                b.PrependFloat32Slot(slot, v, -1.5)
            elif kind == "u64":
                b.PrependUint64Slot(slot, v, 12345)
        return b.EndObject()

    conv_w = np.array([[130, 110], [120, 255], [0, 121]], np.uint8)                 # [3,1,1,2]
    conv_b = np.array([100, -200, 2**31 - 1], np.int32)
    dw_w = (np.arange(27, dtype=np.int64) * 37 % 256 - 128).astype(np.int8)          # [1,3,3,3]
    shape_c = np.array([1, 3], np.int32)
    fconst = np.array([0.5, -2.25], np.float32)
    ext = np.array([1, 2, 3, 4], np.float32)          # stored after the FlatBuffer (offset/size)
    datas = [None, conv_w.tobytes(), conv_b.tobytes(), dw_w.tobytes(), shape_c.tobytes(), fconst.tobytes()]
    bufs = []
    for d in datas:
        if d is None:
            bufs.append(table([]))
        else:
            v = vec("u8", list(d))
            bufs.append(table([(0, "off", v)]))
    # buffer 6: external data; offset patched below once the FlatBuffer size is known
    EXT_MAGIC = 0x1122334455667788
    bufs.append(table([(1, "u64", EXT_MAGIC), (2, "u64", 16)]))
    buffers = vec("off", bufs)

    def quant(scale, zp, qdim=None, mn=None, mx=None):
        s = vec("f32", scale)
        z = vec("i64", zp)
        f = [(2, "off", s), (3, "off", z)]
        if mn is not None:
            f += [(0, "off", vec("f32", mn)), (1, "off", vec("f32", mx))]
        if qdim is not None:
            f.append((6, "i32", qdim))
        return table(f)

    # (name, type, shape, buffer, quant)
    specs = [
        ("input", 3, [1, 4, 4, 2], 0, ([0.5], [128], None, [-64.0], [63.5])),
        ("conv/w", 3, [3, 1, 1, 2], 1, ([0.02], [120], None, None, None)),
        ("conv/b", 2, [3], 2, ([0.01], [0], None, None, None)),
        ("conv/out", 3, [1, 4, 4, 3], 0, ([0.25], [3], None, None, None)),
        ("dw/w", 9, [1, 3, 3, 3], 3, ([0.1, 0.2, 0.3], [0, 0, 0], 3, None, None)),
        ("dw/out", 3, [1, 2, 2, 3], 0, ([0.25], [3], None, None, None)),
        ("pool/out", 3, [1, 1, 1, 3], 0, ([0.25], [3], None, None, None)),
        ("reshape/shape", 2, [2], 4, None),
        ("reshape/out", 3, [1, 3], 0, ([0.25], [3], None, None, None)),
        ("softmax", 0, [1, 3], 0, None),
        ("fconst", 0, [2], 5, None),
        ("add/out", 0, [1, 3], 0, None),
        ("ext", 0, [4], 6, None),
    ]
    tens = []
    for name, ty, shape, buf, q in specs:
        nm = b.CreateString(name)
        sh = vec("i32", shape)
        qo = quant(*q) if q else None
        f = [(0, "off", sh), (1, "i8", ty), (2, "u32", buf), (3, "off", nm)]
        if qo is not None:
            f.append((4, "off", qo))
        tens.append(table(f))
    tensors = vec("off", tens)
    conv_opt = table([(0, "i8", 0), (1, "i32", 2), (2, "i32", 1), (3, "i8", 3), (4, "i32", 1), (5, "i32", 1)])
    dw_opt = table([(0, "i8", 1), (1, "i32", 2), (2, "i32", 2), (3, "i32", 1), (4, "i8", 1)])
    pool_opt = table([(0, "i8", 1), (1, "i32", 2), (2, "i32", 2), (3, "i32", 2), (4, "i32", 2), (5, "i8", 0)])
    rs_opt = table([(0, "off", vec("i32", [1, 3]))])
    sm_opt = table([(0, "f32", 1.0)])
    add_opt = table([(0, "i8", 1)])
    # (opcode index, inputs, outputs, options type, options)
    opspec = [(0, [0, 1, 2], [3], 1, conv_opt), (1, [3, 4, -1], [5], 2, dw_opt), (2, [5], [6], 5, pool_opt),
              (3, [6, 7], [8], 17, rs_opt), (4, [8], [9], 9, sm_opt), (5, [9, 10], [11], 11, add_opt),
              (6, [11], [12], 0, None)]
    ops = []
    for oi, ins, outs, ot, oo in opspec:
        iv, ov = vec("i32", ins), vec("i32", outs)
        f = [(0, "u32", oi), (1, "off", iv), (2, "off", ov), (3, "u8", ot)]
        if oo is not None:
            f.append((4, "off", oo))
        ops.append(table(f))
    operators = vec("off", ops)
    sgname = b.CreateString("main")
    sg_in, sg_out = vec("i32", [0]), vec("i32", [9, 11])
    sg = table([(0, "off", tensors), (1, "off", sg_in), (2, "off", sg_out), (3, "off", operators), (4, "off", sgname)])
    subgraphs = vec("off", [sg])
    # op codes: CONV_2D (old style: deprecated code only), DEPTHWISE (both), AVERAGE_POOL_2D,
    # RESHAPE, SOFTMAX, ADD (version 2), a custom op; one code > 127 (only in builtin_code)
    custom = b.CreateString("MyCustom")
    codes = [table([(0, "i8", 3)]), table([(0, "i8", 4), (3, "i32", 4)]), table([(0, "i8", 1), (3, "i32", 1)]),
             table([(0, "i8", 22), (3, "i32", 22)]), table([(0, "i8", 25), (3, "i32", 25)]),
             table([(0, "i8", 0), (2, "i32", 2), (3, "i32", 0)]),
             table([(0, "i8", 32), (1, "off", custom), (3, "i32", 32)]),
             table([(0, "i8", 127), (3, "i32", 150)])]
    opcodes = vec("off", codes)
    desc = b.CreateString("stylenet tiny test model")
    model = table([(0, "u32", 3), (1, "off", opcodes), (2, "off", subgraphs), (3, "off", desc), (4, "off", buffers)])
    b.Finish(model, file_identifier=b"TFL3")
    out = bytearray(b.Output())
    while len(out) % 16:
        out.append(0)
    off = len(out)
    magic = EXT_MAGIC.to_bytes(8, "little")
    pos = out.find(magic)
    assert pos > 0 and out.find(magic, pos + 1) < 0
    out[pos:pos + 8] = off.to_bytes(8, "little")
    out += ext.tobytes()
    return bytes(out)


# ---------------------------------------------------------------- state dicts (io/state.h)

class Small(torch.nn.Module):
    """conv (no bias) -> bn -> relu -> depthwise conv (bias) -> gap -> linear; tests/io/test_state.c
    builds the same network with nn/net.h"""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4, bias=True)
        self.fc = torch.nn.Linear(8, 5)


def state_fixtures(out):
    from oracle_common import seeded, to_ohwi
    seeded(11)
    m = Small()
    with torch.no_grad():
        m.bn1.running_mean.uniform_(-1, 1)
        m.bn1.running_var.uniform_(0.5, 2)
        m.bn1.weight.uniform_(0.5, 1.5)
        m.bn1.bias.uniform_(-0.5, 0.5)
        m.bn1.num_batches_tracked.fill_(5)
    sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    pt_save(sd, os.path.join(out, "io_state_torch.safetensors"))
    pt_save({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()},
            os.path.join(out, "io_state_torch_f64.safetensors"))
    ref = {k: (to_ohwi(v) if k in ("conv1.weight", "conv2.weight") else v) for k, v in sd.items()
           if k != "bn1.num_batches_tracked"}
    pt_save(ref, os.path.join(out, "io_state_ref.safetensors"))


def make(out):
    st_fixtures(out)
    state_fixtures(out)
    tfl_fixtures(out)
    open(os.path.join(out, "io_tfl_tiny.tflite"), "wb").write(tiny_tflite())


if __name__ == "__main__":
    import sys
    make(sys.argv[1] if len(sys.argv) > 1 else "build/fixtures")
