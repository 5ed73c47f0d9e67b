"""Models for the general-path benchmarks (run as scripts from benchmarks/): a BatchNorm ConvNet
(``wb.models.ConvNet(norm="batch")``), the ResNet-style and the ViT-style networks of
``tests/zoo.py`` (none of them a chain the MLP fast paths read), trained briefly on the 1797 digits.
"""

from __future__ import annotations

import os
import sys

import torch

import workbench as wb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from zoo import TinyResNet, TinyViT  # noqa: E402

MODELS = ("convnet-bn", "resnet", "vit")


def make_model(name: str) -> torch.nn.Module:
    if name == "convnet-bn":
        return wb.models.ConvNet(norm="batch", seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return TinyResNet() if name == "resnet" else TinyViT()


def trained(name: str, data, epochs: int = 2) -> torch.nn.Module:
    """``name`` trained ``epochs`` epochs of Adam (lr 1e-3, batch 64, seed 0) on ``data``, in eval mode."""
    model = make_model(name)
    wb.fit(model, wb.methods.CrossEntropy(), data, epochs=epochs, lr=1e-3, batch_size=64, seed=0, progress=False)
    return model.eval()


def conv_linear_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward on x counted over Conv*d, Linear and attention projections
    (2·MACs; element-wise ops not counted), from forward hooks."""
    total = [0.0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.modules.conv._ConvNd):
            k = mod.weight[0].numel()  # in/groups · kernel
            total[0] += 2.0 * out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total[0] += 2.0 * out.numel() * mod.in_features
        elif isinstance(mod, torch.nn.MultiheadAttention):
            q = inp[0]  # (N, T, E), batch_first
            n, t, e = q.shape
            total[0] += 2.0 * n * t * e * 4 * e + 2.0 * 2 * n * t * t * e  # in/out projections, QKᵀ and AV

    hooks = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return total[0]
