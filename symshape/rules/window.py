"""The one home of the sliding-window arithmetic of convolutions and pools.

A :class:`Window` describes one spatial dim of a conv, transposed conv or pool: kernel k, stride s,
padding on the left and right, dilation d, ceil mode. Rules build them and return them with their
output (``Out.windows``); the tracer keeps them on the :class:`~symshape.report.Layer`, so the
explanation, the exactness conditions and the receptive field read the same numbers as the shape
formula, instead of re-deriving them. Pure sympy: no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..floors import floor_div
from ..printing import fmt
from ..symbols import ShapeError

__all__ = ["Window"]


@dataclass(frozen=True)
class Window:
    """One spatial dim of a sliding-window op.

    ``kernel`` k, ``stride`` s, ``padding`` on the left (an int, or a sympy expression of the sizes
    for TF-style "same" padding), ``padding_right`` (None: the same as the left), ``dilation`` d,
    ``ceil_mode``; ``transposed`` with ``output_padding`` for transposed convolutions.

    >>> w = Window(kernel=7, stride=2)
    >>> w.extent, w.out(32), w.drops(32)
    (7, 13, 1)
    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> from symshape.printing import fmt
    >>> fmt(w.out(H))
    'floor((H - 7)/2) + 1'
    >>> Window(kernel=3, stride=2, padding=1, ceil_mode=True).out(7)
    4
    >>> Window(kernel=4, stride=2, padding=1, transposed=True).out(H)
    2*H
    """

    kernel: int
    stride: int = 1
    padding: Any = 0
    dilation: int = 1
    ceil_mode: bool = False
    padding_right: Any = None
    transposed: bool = False
    output_padding: int = 0

    @property
    def right(self):
        """The padding on the right (the left padding unless set)."""
        return self.padding if self.padding_right is None else self.padding_right

    @property
    def extent(self) -> int:
        """The dilated kernel size e = d·(k - 1) + 1: how many input rows one window spans."""
        return self.dilation * (self.kernel - 1) + 1

    def out(self, size):
        """The output size for an input of *size* (an int or a sympy expression).

        floor mode: floor((L + p_left + p_right - e)/s) + 1.
        ceil mode: min(ceil((L + 2p - e)/s) + 1, floor((L + p - 1)/s) + 1), since the last window
        must start inside the input or the left padding (aten's pooling_output_shape); both
        candidates are floors of L plus a constant over s, so the minimum is the smaller constant.
        transposed: (L - 1)·s - 2p + e + output_padding.
        """
        s, e = self.stride, self.extent
        if self.transposed:
            return (size - 1) * s - self.padding - self.right + e - 1 + self.output_padding + 1
        shift = self.padding + self.right - e
        if self.ceil_mode:
            if not isinstance(self.padding, int):
                raise ShapeError("ceil mode needs an integer padding")
            shift = min(2 * self.padding - e + s - 1, self.padding - 1)
        if not isinstance(s, int) and not getattr(s, "is_Integer", False):  # a kernel read from the input size
            return sympy.floor(sympy.cancel((size + shift) / s)) + 1
        return floor_div(size + shift, s) + 1

    def covered(self, size, out=None):
        """How many input rows (padding aside) the windows reach, counted from the first:
        ``(out - 1)·s + e - p_left``, the end of the last window in input coordinates."""
        out = self.out(size) if out is None else out
        return (out - 1) * self.stride + self.extent - self.padding

    def drops(self, size, out=None):
        """How many trailing input rows no window covers: ``max(0, L - covered)``; 0 when the
        grid of windows reaches the end of the input."""
        left = size - self.covered(size, out)
        if isinstance(left, int) or getattr(left, "is_Integer", False):
            return max(0, int(left))
        return sympy.Max(0, left)

    def exact(self, size, out=None):
        """The relation "no input row is dropped": ``covered >= L`` (sympy.true where it always holds)."""
        if self.transposed or self.stride == 1:
            return sympy.true
        return sympy.Ge(self.covered(size, out), size)

    def describe(self) -> str:
        """The hyper-parameters as people write them: ``kernel 3, stride 2, padding 1``."""
        parts = [f"kernel {self.kernel}", f"stride {self.stride}"]
        pad = fmt(self.padding) if self.padding_right is None else f"{fmt(self.padding)} (left), {fmt(self.right)} (right)"
        parts.append(f"padding {pad}")
        if self.dilation != 1:
            parts.append(f"dilation {self.dilation}")
        if self.ceil_mode:
            parts.append("ceil mode")
        if self.output_padding:
            parts.append(f"output_padding {self.output_padding}")
        return ", ".join(parts)

    def to_data(self) -> dict:
        """Plain data for JSON (expressions of padding are left to the caller to print)."""
        data = {"kernel": self.kernel, "stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        if self.ceil_mode:
            data["ceil_mode"] = True
        if self.padding_right is not None:
            data["padding_right"] = self.padding_right
        if self.transposed:
            data["transposed"] = True
            data["output_padding"] = self.output_padding
        return data

    @classmethod
    def from_data(cls, data: dict) -> "Window":
        """The window :meth:`to_data` wrote (ints only; a symbolic padding is parsed by the caller)."""
        known = {"kernel", "stride", "padding", "dilation", "ceil_mode", "padding_right", "transposed", "output_padding"}
        unknown = set(data) - known
        if unknown or "kernel" not in data:
            raise ShapeError(f"a window needs 'kernel' and takes only {sorted(known)}, got {sorted(data)}")
        return cls(**data)


def windows(nd: int, kernel, stride, padding=0, dilation=1, ceil_mode: bool = False,
            transposed: bool = False, output_padding=0) -> tuple:
    """One :class:`Window` per spatial dim, from hyper-parameters given as ints or tuples.

    >>> windows(2, 3, (2, 1), 1)[1]
    Window(kernel=3, stride=1, padding=1, dilation=1, ceil_mode=False, padding_right=None, transposed=False, output_padding=0)
    """
    def n(v):
        if isinstance(v, (tuple, list)):
            return tuple(v) * nd if len(v) == 1 and nd > 1 else tuple(v)
        return (v,) * nd

    stride = kernel if stride is None else stride
    return tuple(Window(k, s, p, d, bool(ceil_mode), None, transposed, op)
                 for k, s, p, d, op in zip(n(kernel), n(stride), n(padding), n(dilation), n(output_padding)))


def same_padding(extent: int) -> tuple:
    """PyTorch's padding='same' at stride 1: the total d·(k - 1) split left = total//2, right = the rest."""
    total = extent - 1
    return total // 2, total - total // 2
