"""Networks the workbench did not write, for the "any model" contract tests.

torchvision cannot be imported on the CPU torch wheel here, so these are written out: a
ResNet-style classifier (conv stem, residual blocks with BatchNorm, global average pooling, an
``fc`` head — torchvision's attribute names), a tiny ViT-style classifier (patch embedding, a class
token, pre-norm transformer blocks with dropout, a ``head``), and a Hugging Face-style model whose
forward returns an object with ``.logits``. None has ``features()``/``head()`` methods of the
workbench's own shape; ``wb.models.wrap`` turns them into workbench classifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class TinyResNet(nn.Module):
    """(N, C, H, W) -> (N, classes); ``layer2`` gives (N, 2*width, H/2, W/2) feature maps."""

    def __init__(self, in_channels: int = 1, classes: int = 10, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))  # (N, 2w, H/2, W/2)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """(N, C, H, W) -> (N, classes); the class token after ``norm`` is the representation."""

    def __init__(self, in_channels: int = 1, image: int = 8, patch: int = 2, dim: int = 16,
                 depth: int = 2, heads: int = 2, classes: int = 10, dropout: float = 0.1):
        super().__init__()
        n = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, n + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward_features(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, P, dim)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1) + self.pos_embed
        return self.norm(self.blocks(t))[:, 0]  # (N, dim)

    def forward(self, x):
        return self.head(self.forward_features(x))


@dataclass
class Output:
    logits: torch.Tensor


class HFStyle(nn.Module):
    """Returns an object with ``.logits`` (and takes ``pixel_values=``), as Hugging Face models do."""

    def __init__(self, in_dim: int = 64, classes: int = 10):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, 32), nn.Tanh())
        self.classifier = nn.Linear(32, classes)

    def forward(self, pixel_values):
        return Output(logits=self.classifier(self.encoder(pixel_values)))
