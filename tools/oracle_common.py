"""Shared helpers for the oracle scripts: deterministic PyTorch, and safetensors output."""
import torch
from safetensors.torch import save_file

torch.set_num_threads(2)
torch.use_deterministic_algorithms(False)


def seeded(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def to_nhwc(t):
    """NCHW activation -> NHWC (stylenet's layout), contiguous float32."""
    return t.detach().permute(0, 2, 3, 1).contiguous().float()


def to_ohwi(t):
    """OIHW conv weight -> OHWI (stylenet's storage)."""
    return t.detach().permute(0, 2, 3, 1).contiguous().float()


def save(path, tensors, meta=None):
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata=meta)
