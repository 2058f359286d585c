"""Reference data for tests/io/test_pth.c: PyTorch checkpoints written by torch.save, and hostile ones.

pth_small_{zip,legacy}.pth: one state dict (a small module's state_dict(), so it carries _metadata
and BN's num_batches_tracked, plus float16/bfloat16/float64/int32/uint8/bool tensors, a Parameter,
a permuted (non-contiguous) tensor, a 0-dim and an empty tensor, and three views at offsets
into one shared storage) saved in the zip format and with _use_new_zipfile_serialization=False (the legacy one).  pth_small_ref.safetensors
holds the same tensors converted as the C reader converts them (floats -> float32, integers ->
int64).  pth_ckpt_zip.pth: a training checkpoint {"epoch", "state_dict", "best"} around it.
pth_seed_{zip,legacy}.pth: tiny ones (the fuzzer's seeds, copied to tests/fuzz/corpus/pth/).

pth_evil_*.pth: files the reader must refuse with an error naming the file, never executing
anything: globals other than the tensor rebuilders (os.system, builtins.eval), REDUCE of a
storage type or of a non-callable, a tensor reaching outside its storage, a shape whose size
overflows int64, strides reaching outside the storage or negative, a storage whose element count
disagrees, a storage missing from a zip file.  Each is built by pickling crafted objects with torch's own pickle layout.
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import torch
from safetensors.torch import save_file


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)


def small_state_dict():
    torch.manual_seed(13)
    m = Small()
    m.bn.running_mean.uniform_(-1, 1)
    m.bn.num_batches_tracked.fill_(12345678901)
    sd = m.state_dict()
    g = torch.Generator().manual_seed(7)
    sd["half"] = torch.randn(2, 5, generator=g).half()
    sd["bf16"] = torch.randn(7, generator=g).bfloat16()
    sd["double"] = torch.randn(3, 2, generator=g, dtype=torch.float64)
    sd["ints"] = torch.arange(-5, 7, dtype=torch.int32).reshape(3, 4)
    sd["bytes"] = torch.arange(0, 250, 50, dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
    base = torch.randn(40, generator=g)
    sd["view_a"] = base[0:10].view(2, 5)
    sd["view_b"] = base[10:34].view(2, 3, 4)
    sd["view_c"] = base[34:]
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(2.5)
    sd["permuted"] = torch.randn(3, 4, 2, generator=g).permute(2, 0, 1)  # strides (1, 8, 2)
    return sd


def reference(sd):
    out = {}
    for k, v in sd.items():
        v = v.detach()
        out[k] = (v.float() if v.is_floating_point() else v.long()).contiguous().clone()
    return out


# ---------------------------------------------------------------- crafted files

class Storage:
    """a storage by key: pickled as torch's persistent id"""
    def __init__(self, key, numel, typ=torch.FloatStorage):
        self.key, self.numel, self.typ = key, numel, typ


class Tensor:
    """pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())"""
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def crafted_pickle(obj):
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=2)
    p.persistent_id = lambda o: ("storage", o.typ, o.key, "cpu", o.numel) if isinstance(o, Storage) else None
    p.dump(obj)
    return f.getvalue()


def legacy_file(state_pickle, storages):
    """storages: [(key, numel written, bytes)]"""
    b = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
    b += pickle.dumps({"protocol_version": 1001, "little_endian": True,
                       "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    b += state_pickle + pickle.dumps([k for k, _, _ in storages], protocol=2)
    for _, n, data in storages:
        b += struct.pack("<q", n) + data
    return b


def zip_file(data_pkl, storages):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        for k, _, data in storages:
            z.writestr(f"archive/data/{k}", data)
        z.writestr("archive/version", "3\n")
    return f.getvalue()


def evil_files():
    """name -> bytes; the test expects each refused with the message part in its table"""
    s10 = Storage("0", 10)
    data10 = struct.pack("<10f", *range(10))
    st = [("0", 10, data10)]

    def sd(t):
        return crafted_pickle(collections.OrderedDict([("w", t)]))

    ev = {
        "global_os_system": b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.",
        "global_eval": b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.",
        "reduce_storage_type": b"\x80\x02ctorch\nFloatStorage\n)R.",
        "reduce_non_global": b"\x80\x02))R.",
        "offset_out": sd(Tensor(s10, 8, [4], [1])),
        "shape_overflow": sd(Tensor(s10, 0, [2**31, 2**31, 2**31], [2**62, 2**31, 1])),
        "stride_out": sd(Tensor(s10, 0, [2, 5], [6, 1])),
        "stride_negative": sd(Tensor(s10, 5, [2], [-1])),
        "not_tensor": crafted_pickle({"w": 3}),
        "opcode_inst": b"\x80\x02(iposix\nsystem\nX\x02\x00\x00\x00id.",
        "truncated_pickle": b"\x80\x02}q\x00(X\x01\x00",
    }
    out = {}
    for k, p in ev.items():
        out[f"pth_evil_{k}_legacy.pth"] = legacy_file(p, st)
        out[f"pth_evil_{k}_zip.pth"] = zip_file(p, st)
    good = sd(Tensor(s10, 2, [2, 4], [4, 1]))
    out["pth_evil_count_legacy.pth"] = legacy_file(good, [("0", 11, data10)])
    out["pth_evil_missing_zip.pth"] = zip_file(good, [])
    out["pth_crafted_ok_legacy.pth"] = legacy_file(good, st)
    out["pth_crafted_ok_zip.pth"] = zip_file(good, st)
    return out


def make(out):
    sd = small_state_dict()
    torch.save(sd, os.path.join(out, "pth_small_zip.pth"))
    torch.save(sd, os.path.join(out, "pth_small_legacy.pth"), _use_new_zipfile_serialization=False)
    save_file(reference(sd), os.path.join(out, "pth_small_ref.safetensors"))
    ck = {"epoch": 3, "state_dict": sd, "best": 0.75}
    torch.save(ck, os.path.join(out, "pth_ckpt_zip.pth"))
    torch.save(ck, os.path.join(out, "pth_ckpt_legacy.pth"), _use_new_zipfile_serialization=False)
    seed = collections.OrderedDict()
    base = torch.arange(6, dtype=torch.float32)
    seed["a"] = base[:4].view(2, 2)
    seed["b"] = base[4:]
    seed["h"] = torch.tensor([1.5, -2.0]).half()
    seed["n"] = torch.tensor(7)
    torch.save(seed, os.path.join(out, "pth_seed_zip.pth"))
    torch.save(seed, os.path.join(out, "pth_seed_legacy.pth"), _use_new_zipfile_serialization=False)
    for name, b in evil_files().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)
    # a whole torchvision network's state dict, as a user's torch.save writes it, in both formats and
    # as safetensors: stylenet must load all three to the same weights (predict compares them)
    import torchvision
    torch.manual_seed(5)
    mnet = torchvision.models.mobilenet_v2(num_classes=10).eval()
    for mod in mnet.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    msd = mnet.state_dict()
    torch.save(msd, os.path.join(out, "pth_mnv2_zip.pth"))
    torch.save(msd, os.path.join(out, "pth_mnv2_legacy.pth"), _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in msd.items()}, os.path.join(out, "pth_mnv2.safetensors"))
