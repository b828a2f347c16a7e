"""Small modules on which tests/test_conventions.py compares ``rep.macs_as(tool)`` with numbers
recorded from the tools themselves (``python benchmarks/counters.py --record`` prints them), each at
two sizes. Plain torch: importable in the tools' environment, which has no pytest."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    """nn.MultiheadAttention(16, 4) on x, x, x, returning the output only."""

    def __init__(self, need_weights: bool, batch_first: bool = True):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


class CrossAttention(nn.Module):
    """nn.MultiheadAttention(16, 4, kdim=8, vdim=8) on x and the first 8 features of x."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, kdim=8, vdim=8, batch_first=True)

    def forward(self, x):
        y = x[:, :, :8]
        return self.attn(x, y, y, need_weights=False)[0]


class Functions(nn.Module):
    """The spellings ptflops tells apart: it patches torch.matmul, torch.add, torch.mul, Tensor.add
    and F.relu, F.softmax, but sees neither ``@``, ``+`` nor torch.relu, Tensor.softmax."""

    def forward(self, x):
        t = x.transpose(-1, -2)
        return (torch.matmul(x, t), x @ t, F.relu(x), torch.relu(x), torch.add(x, x), x + x, x.add(x),
                torch.mul(x, 2.0), F.softmax(x, -1), x.softmax(-1), torch.bmm(x[0], t[0]))


class Add(nn.Module):
    def forward(self, x):
        return x + x


class MatMul(nn.Module):
    def forward(self, x):
        return x @ x.transpose(-1, -2)


IMAGE = ({"H": 10, "W": 12}, {"H": 7, "W": 9})
SEQUENCE = ({"L": 5}, {"L": 7})

#: name -> (factory, input spec, two sizes)
CASES = {
    "conv": (lambda: nn.Conv2d(3, 8, 3, bias=False), "2,3,H,W", IMAGE),
    "conv_bias": (lambda: nn.Conv2d(3, 8, 3), "2,3,H,W", IMAGE),
    "conv_grouped": (lambda: nn.Conv2d(4, 8, 3, groups=2, bias=False), "2,4,H,W", IMAGE),
    # fvcore issue #78's example (1×1 input) and a larger input
    "conv_transpose_78": (lambda: nn.ConvTranspose2d(32, 1, 3), "1,32,H,W", ({"H": 1, "W": 1}, {"H": 2, "W": 3})),
    "conv_transpose": (lambda: nn.ConvTranspose2d(8, 4, 2, stride=2, bias=False), "2,8,H,W",
                       ({"H": 5, "W": 6}, {"H": 3, "W": 4})),
    "linear": (lambda: nn.Linear(16, 8, bias=False), "2,L,16", SEQUENCE),  # torchinfo issue #77
    "linear_bias": (lambda: nn.Linear(16, 8), "2,L,16", SEQUENCE),
    "batchnorm": (lambda: nn.BatchNorm2d(3), "2,3,H,W", IMAGE),
    "batchnorm_plain": (lambda: nn.BatchNorm2d(3, affine=False), "2,3,H,W", IMAGE),
    "layernorm": (lambda: nn.LayerNorm(16), "2,L,16", SEQUENCE),
    "relu": (nn.ReLU, "2,3,H,W", IMAGE),
    "relu6": (nn.ReLU6, "2,3,H,W", IMAGE),
    "leaky_relu": (nn.LeakyReLU, "2,3,H,W", IMAGE),
    "gelu": (nn.GELU, "2,3,H,W", IMAGE),
    "silu": (nn.SiLU, "2,3,H,W", IMAGE),
    "tanh": (nn.Tanh, "2,3,H,W", IMAGE),
    "softmax": (lambda: nn.Softmax(-1), "2,3,H,W", IMAGE),
    "maxpool": (lambda: nn.MaxPool2d(2), "2,3,H,W", IMAGE),
    "avgpool": (lambda: nn.AvgPool2d(2), "2,3,H,W", IMAGE),
    "adaptive_avgpool": (lambda: nn.AdaptiveAvgPool2d(1), "2,3,H,W", IMAGE),
    "adaptive_avgpool_2x3": (lambda: nn.AdaptiveAvgPool2d((2, 3)), "2,3,H,W", IMAGE),
    "upsample_nearest": (lambda: nn.Upsample(scale_factor=2), "2,3,H,W", IMAGE),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), "2,3,H,W", IMAGE),
    "upsampling_nearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=2), "2,3,H,W", IMAGE),
    "local_response_norm": (lambda: nn.LocalResponseNorm(5), "2,8,H,W", IMAGE),
    "dropout": (nn.Dropout, "2,3,H,W", IMAGE),
    "groupnorm": (lambda: nn.GroupNorm(3, 6), "2,6,H,W", IMAGE),
    "instancenorm_affine": (lambda: nn.InstanceNorm2d(3, affine=True), "2,3,H,W", IMAGE),
    "rmsnorm": (lambda: nn.RMSNorm(16), "2,L,16", SEQUENCE),
    "prelu": (nn.PReLU, "2,3,H,W", IMAGE),
    "elu": (nn.ELU, "2,3,H,W", IMAGE),
    "softmax2d": (nn.Softmax2d, "2,3,H,W", IMAGE),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, stride=2), "2,4,L", SEQUENCE),
    "avgpool1d": (lambda: nn.AvgPool1d(2), "2,4,L", SEQUENCE),
    "adaptive_avgpool1d": (lambda: nn.AdaptiveAvgPool1d(2), "2,4,L", SEQUENCE),
    "attention": (lambda: SelfAttention(False), "2,L,16", SEQUENCE),
    "attention_weights": (lambda: SelfAttention(True), "2,L,16", SEQUENCE),
    "attention_seq_first": (lambda: SelfAttention(False, batch_first=False), "L,2,16", SEQUENCE),
    "cross_attention": (CrossAttention, "2,L,16", SEQUENCE),
    "functions": (Functions, "2,3,H,W", IMAGE),
    "add": (Add, "2,3,H,W", IMAGE),
    "matmul": (MatMul, "2,3,H,W", IMAGE),
}
