"""One formula over all pieces of a piecewise report (see :attr:`~symshape.report.Report.pieces`):
``rep.piecewise("macs")`` is a ``sympy.Piecewise`` whose cases are the pieces' formulas, each with
the conditions of its branches."""
from __future__ import annotations

from typing import Callable, Union

import sympy

from .report import Report, report_method
from .symbols import ShapeError

__all__ = ["piecewise"]


@report_method
def piecewise(report: Report, value: Union[str, Callable] = "macs") -> sympy.Expr:
    """*value* (an attribute of a report, such as ``"macs"`` or ``"activations"``, or a function
    of a report, such as ``lambda r: r.layer("fc1").out_shape[-1]``) as one formula: a
    ``sympy.Piecewise`` over the pieces, each case holding where the piece's branch conditions do;
    for a report of one piece, its value.

    >>> import torch.nn as nn, symshape as ss
    >>> class Crop(nn.Module):
    ...     def forward(self, x):
    ...         return x[:, :, :8] if x.shape[-1] > 8 else x
    >>> rep = ss.trace(Crop(), "1,3,L")
    >>> rep.piecewise(lambda r: r.output_shape[-1])
    Piecewise((8, L >= 9), (L, L <= 8))
    """
    get = value if callable(value) else _attribute(value)
    if not report.pieces:
        return get(report)
    return sympy.Piecewise(*((get(p), sympy.And(*(c.expr for c in p.branch))) for p in report.pieces))


def _attribute(name: str) -> Callable:
    if not isinstance(name, str) or name not in ("macs", "flops", "activations", "output_shape", "params"):
        raise ShapeError(f"piecewise() takes 'macs', 'flops', 'activations', 'params' or a function of a report, "
                         f"got {name!r:.60}")
    if name == "output_shape":
        raise ShapeError("piecewise() gives one expression: ask for one size, such as "
                         "lambda r: r.output_shape[-1]")
    return lambda r: getattr(r, name)
