"""PyTorch reference data for EfficientNet-Lite (tests/models/test_efficientnet.c).

The reference implementation is the PyPI package efficientnet-lite-pytorch 0.1.0 (installed into
the test venv by the Makefile), built with EfficientNet.from_name('efficientnet-lite<k>',
num_classes=10, image_size=[64, 80], dropout_rate=0) and run by Debian's PyTorch.  The files have
the layout of tools/fixtures_models.py (same reference(): float64 pass as the reference, f32err.*
from four float32 passes, the seed chosen by well_conditioned()):

  models_efficientnet_lite0_state / _ref.safetensors   drop_connect_rate 0 (no drop-path)
  models_efficientnet_lite2_state / _ref.safetensors   drop_connect_rate 0
  models_efficientnet_lite0_dc_state / _ref.safetensors
      drop_connect_rate 0.2 in the train pass, with the package's own drop_connect(): only the
      uniform numbers it draws with torch.rand are replaced by stylenet's (rng.h: splitmix64 under
      the net's seed 42, stream step * 4096 + node index, element = sample; step 1 = the first
      training forward), so both sides drop the same samples.  The node index of each drop-path
      node is counted here as src/models/efficientnet_lite.c builds the graph.  A batch of 4.  Metadata
      "dropped" lists the (block, sample) pairs dropped; "droppath_nodes" their node indices.
"""
import os

import torch
import torch.nn as nn
from safetensors import safe_open

from fixtures_models import perturb_bn, reference, well_conditioned
from oracle_common import save

N, H, W, CLASSES = 2, 64, 80, 10
N_DC = 4  # the drop-path case: ~3.9 samples of 4 x 9 drop-paths dropped on average (P(none) ~2%)
NET_SEED = 42  # model_default_opts().seed: the net's rng seed for masks
M64 = (1 << 64) - 1


def rng_mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_uniform(seed, stream, i):
    """core/rng.h rng_uniform: 24 bits of rng_u64 as a float in [0, 1) (exact in float32)"""
    return (rng_mix((rng_mix(seed ^ rng_mix(stream)) + i) & M64) >> 40) / 16777216.0


def droppath_nodes(model):
    """node index of each drop-path node in stylenet's graph, and its block index, in block order
    (as efficientnet_lite.c builds: input, stem conv/bn/relu6, per block [expand conv/bn/relu6],
    depthwise conv/bn/relu6, project conv/bn, [drop-path if rate > 0], add)"""
    nxt, out = 4, []
    blocks = len(model._blocks)
    for b, blk in enumerate(model._blocks):
        a = blk._block_args
        nxt += (3 if a.expand_ratio != 1 else 0) + 3 + 2
        skip = a.id_skip and a.stride == 1 and a.input_filters == a.output_filters
        if skip:
            if model._global_params.drop_connect_rate * (b / blocks) > 0:
                out.append((b, nxt))
                nxt += 1
            nxt += 1
    return out


class FixedUniforms(nn.Module):
    """runs `model` with torch.rand (which drop_connect() draws from) giving `uniforms` in order"""

    def __init__(self, model, uniforms):
        super().__init__()
        self.model, self.uniforms = model, uniforms

    def forward(self, x):
        k = [0]
        real = torch.rand

        def rand(shape, dtype=None, device=None):
            u = self.uniforms[k[0]]
            k[0] += 1
            return u.reshape(shape).to(dtype)
        torch.rand = rand
        try:
            y = self.model(x)
        finally:
            torch.rand = real
        assert k[0] == len(self.uniforms), f"{k[0]} drop_connect calls, {len(self.uniforms)} drop-path nodes"
        return y


def lite(outdir, variant, seeds, drop_connect=0.0):
    from efficientnet_lite_pytorch import EfficientNet
    tag = f"efficientnet_lite{variant}" + ("_dc" if drop_connect else "")
    meta = {}

    def build(seed):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=CLASSES, image_size=[H, W],
                                       dropout_rate=0.0, drop_connect_rate=drop_connect)
        bns = [b for b in model.modules() if isinstance(b, nn.BatchNorm2d)]
        momenta = [b.momentum for b in bns]  # the package's 1 - 0.99; perturb_bn leaves 0.1
        perturb_bn(model, torch.randn(4, 3, H, W, generator=g), g)
        for b, mom in zip(bns, momenta):
            b.momentum = mom
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        n = N_DC if drop_connect else N
        x = torch.randn(n, 3, H, W, generator=g)
        target = torch.randint(0, CLASSES, (n,), generator=g)
        train_model = model
        if drop_connect:
            nodes = droppath_nodes(model)
            uniforms = [torch.tensor([rng_uniform(NET_SEED, 1 * 4096 + i, s) for s in range(n)]) for _, i in nodes]
            blocks = len(model._blocks)
            dropped = [(b, s) for (b, _), u in zip(nodes, uniforms) for s in range(n)
                       if u[s].item() < drop_connect * (b / blocks)]
            assert dropped, "no sample dropped: the drop-path check would test nothing"
            meta["dropped"] = " ".join(f"{b}:{s}" for b, s in dropped)
            meta["droppath_nodes"] = " ".join(str(i) for _, i in nodes)
            train_model = FixedUniforms(model, uniforms)
        return state, reference(model, train_model, x, target, lambda m, _: m.named_parameters,
                                lambda m, _: lambda: [(n, b) for n, b in m.named_modules()
                                                      if isinstance(b, nn.BatchNorm2d)])
    well_conditioned(outdir, tag, build, seeds)
    if meta:  # the masks depend on the net's seed only, not on the case's seed: the same for every seed
        path = os.path.join(outdir, f"models_{tag}_ref.safetensors")
        with safe_open(path, "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = {**f.metadata(), **meta}
        save(path, tensors, meta)
        print(f"  {tag}: dropped (block:sample) {meta['dropped']}", flush=True)


def make(outdir):
    # No seed of 1-4 is well conditioned for any case (PyTorch's float32 noise is 30-260 x the
    # default tolerance: ReLU6 decisions within float32 noise in train-mode BN on a batch of 2-4 at
    # 2x3..4x5 pixels, as for resnet50 and mobilenet_v2), so each keeps its least noisy seed and the
    # tests fall back to 4 x PyTorch's own float32 error there.  Measured (1 / 2 / 3 / 4):
    # lite0 102 / 175 / 54.4 / 43; lite2 93.6 / 144 / 261 / 63.4; lite0_dc 69.7 / 115 / 30.7 / 113.
    torch.set_grad_enabled(True)
    lite(outdir, 0, [4])
    lite(outdir, 2, [4])
    lite(outdir, 0, [3], drop_connect=0.2)
