"""The "who counts what" table: per op kind and tool, what the tool counts, in the symbols of
:data:`LEGEND`. Each row has a small example module; :func:`check_row` compares the row's cells with
``rep.macs_as(tool)`` (the rule tables) on the example at two sizes, so the table cannot drift from
the rules, and :func:`who_counts` renders it as the README's markdown table.

>>> print(who_counts().splitlines()[2])
| conv | MACs | MACs | MACs/N | MACs | MACs |
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import sympy
import torch.nn as nn

__all__ = ["LEGEND", "ROWS", "TOOLS", "who_counts", "check_row", "row_values"]

TOOLS = ("torchvision", "fvcore", "ptflops", "thop", "torchinfo")
MACS, X, Y, N, P, O, I, A, H, L = sympy.symbols("MACs X Y N P O I A H L", positive=True)

#: What the symbols of the table mean.
LEGEND = {
    "MACs": "the layer's MACs in symshape's default (torchvision) convention",
    "X": "input elements", "Y": "output elements", "N": "the batch (the input's first dim)",
    "P": "the layer's parameters", "O": "output positions (N times the spatial sizes)",
    "I": "input positions", "A": "the two attention products, 2·N·L²·E (sequence L, embedding E)",
    "H": "attention heads",
}


class _Add(nn.Module):
    def forward(self, x):
        return x + x


class _MatMul(nn.Module):
    def forward(self, x):
        return x @ x.transpose(-1, -2)


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class Row(NamedTuple):
    """One op kind: its example (a factory, an input spec, two sizes), the example to subtract
    (for a bias: the same conv without it) and the cells, one per tool."""

    label: str
    factory: Callable
    spec: str
    sizes: tuple
    cells: tuple
    without: Callable = None


_IMG, _SEQ = ({"H": 10, "W": 12}, {"H": 7, "W": 9}), ({"L": 5}, {"L": 7})

ROWS = (
    Row("conv", lambda: nn.Conv2d(8, 16, 3, bias=False), "2,8,H,W", _IMG, (MACS, MACS, MACS / N, MACS, MACS)),
    Row("conv bias", lambda: nn.Conv2d(8, 16, 3), "2,8,H,W", _IMG, (0, 0, Y / N, 0, Y),
        without=lambda: nn.Conv2d(8, 16, 3, bias=False)),
    Row("conv transpose (kernel = stride = 2)", lambda: nn.ConvTranspose2d(16, 8, 2, stride=2, bias=False),
        "2,16,H,W", _IMG, (MACS, MACS, MACS / N, MACS * O / I, P * O)),
    Row("linear on (N, L, in)", lambda: nn.Linear(16, 8, bias=False), "2,L,16", _SEQ,
        (MACS, MACS, MACS / N, MACS, N * P)),
    Row("BatchNorm (eval, affine)", lambda: nn.BatchNorm2d(8), "2,8,H,W", _IMG, (0, 2 * X, 2 * X / N, 4 * X, N * P)),
    Row("LayerNorm (affine)", lambda: nn.LayerNorm(16), "2,L,16", _SEQ, (0, 5 * X, X / N, 4 * X, N * P)),
    Row("ReLU", nn.ReLU, "2,8,H,W", _IMG, (0, 0, Y / N + X, 0, 0)),
    Row("max pooling", lambda: nn.MaxPool2d(2), "2,8,H,W", _IMG, (0, 0, X / N + X, 0, 0)),
    Row("average pooling", lambda: nn.AvgPool2d(2), "2,8,H,W", _IMG, (0, 0, X / N + X, Y, 0)),
    Row("adaptive average pooling", lambda: nn.AdaptiveAvgPool2d(1), "2,8,H,W", _IMG, (0, X, X / N + X, X + Y, 0)),
    Row("upsample (nearest, ×2)", lambda: nn.Upsample(scale_factor=2), "2,8,H,W", _IMG,
        (0, Y, Y / N ** 2 + Y, Y, 0)),
    Row("upsample (bilinear, ×2)", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), "2,8,H,W", _IMG,
        (0, 4 * Y, Y / N ** 2 + Y, 11 * Y, 0)),
    Row("matmul (a @ b)", _MatMul, "2,8,H,W", _IMG, (MACS, MACS, 0, 0, 0)),
    Row("attention (nn.MultiheadAttention, need_weights=False)", _SelfAttention, "2,L,16", _SEQ,
        (MACS, MACS - A, (MACS + 5 * X + N * H * L ** 2) / N, 0, 0)),
    Row("elementwise add (a + b)", _Add, "2,8,H,W", _IMG, (0, 0, 0, 0, 0)),
)


def row_values(row: Row, sizes: dict) -> dict:
    """The symbols' values on the row's example at *sizes*, and each tool's count there."""
    from ..trace import trace  # the table traces its examples; the conventions themselves need no tracer

    rep = trace(row.factory().eval(), row.spec).at(sizes)
    layer = rep.layers[-1]
    x, y = layer.in_shapes[0], layer.out_shapes[0]
    values = {MACS: rep.macs, X: sympy.Mul(*x), Y: sympy.Mul(*y), N: x[0], P: rep.params,
              O: y[0] * sympy.Mul(*y[2:]), I: x[0] * sympy.Mul(*x[2:])}
    if isinstance(layer.attrs.get("num_heads"), int):
        values.update({H: layer.attrs["num_heads"], L: x[1], A: 2 * x[0] * x[1] ** 2 * x[2]})
    counts = {tool: rep.macs_as(tool).total for tool in TOOLS}
    if row.without is not None:
        base = trace(row.without().eval(), row.spec).at(sizes)
        counts = {tool: counts[tool] - base.macs_as(tool).total for tool in TOOLS}
    return {"values": values, "counts": counts}


def check_row(row: Row) -> list:
    """The cells of *row* that disagree with the rule tables: ``(tool, sizes, cell value, count)``."""
    wrong = []
    for sizes in row.sizes:
        got = row_values(row, sizes)
        for tool, cell in zip(TOOLS, row.cells):
            value = sympy.sympify(cell).subs(got["values"])
            if value != got["counts"][tool]:
                wrong.append((tool, sizes, value, got["counts"][tool]))
    return wrong


def _cell(expr) -> str:
    expr = sympy.sympify(expr)
    return "0" if expr == 0 else sympy.sstr(expr, order="none").replace("**", "^").replace("*", "·")


def who_counts() -> str:
    """The table as markdown, with its legend."""
    lines = ["| op | " + " | ".join(TOOLS) + " |", "|" + "---|" * (len(TOOLS) + 1)]
    lines += [f"| {row.label} | " + " | ".join(_cell(c) for c in row.cells) + " |" for row in ROWS]
    lines.append("")
    lines += [f"- {k}: {v}" for k, v in LEGEND.items()]
    return "\n".join(lines)
