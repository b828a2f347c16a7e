"""symshape: symbolic shape reasoning for neural networks.

Closed-form output sizes, flatten sizes, parameter counts and MACs of torch models as sympy
expressions of the input sizes.

>>> import torch.nn as nn
>>> import symshape as ss
>>> H, W = ss.symbols("H W")
>>> rep = ss.trace(nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2)), (1, 3, H, W))
>>> rep.output_shape
(1, 3, floor(H/8), floor(W/8))
"""
import warnings as _warnings

__version__ = "0.1.0"

with _warnings.catch_warnings():
    # torch warns on import when NumPy is absent; symshape never needs NumPy, so its users need not see it
    _warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch as _torch  # noqa: F401

from .verify import CheckResult, check
from .floors import canonical, ceil_div, floor_div, mod
from .printing import fmt
from . import render as _render  # noqa: F401  (attaches print(rep), rep.to_latex(), ... to Report)
from .report import Condition, Layer, Report, Shape
from . import receptive as _receptive  # noqa: F401  (attaches rep.receptive_field())
from .receptive import ReceptiveField
from . import export as _export  # noqa: F401  (attaches rep.dynamic_shapes())
from . import memory as _memory  # noqa: F401  (attaches rep.memory())
from . import memory_ops as _memory_ops  # noqa: F401  (memory rules of attention and LRN)
from . import conventions as _conventions  # noqa: F401  (attaches rep.macs_as())
from . import pieces as _pieces  # noqa: F401  (attaches rep.piecewise())
from .conventions import Count
from .memory import Memory
from .rules.registry import Out, register
from .symbols import ShapeError, parse_expr, parse_shape, symbols
from .trace import trace
from .sets import SolutionSet
from .solve import solve
from . import zoo

__all__ = [
    "symbols", "parse_shape", "parse_expr", "trace", "fmt", "register", "Out", "ShapeError",
    "Report", "Layer", "Condition", "Shape", "floor_div", "ceil_div", "mod", "canonical",
    "check", "CheckResult",
    "solve", "SolutionSet", "zoo", "ReceptiveField", "Memory", "Count",
]
