"""Other counters' conventions: ``rep.macs_as("fvcore")`` and the "who counts what" table.

Each tool has a small table of pure rules, one per layer kind, read from the tool's source
(``fvcore.py``, ``ptflops.py``, ``thop.py``, ``torchinfo.py`` here; each names its version and
source files). :func:`macs_as` applies them to a report's layers and returns a :class:`Count`: the
tool's total as a formula of the input sizes, bugs included, with the per-layer terms and where
the rules come from. ``"torchvision"`` is symshape's own count (``rep.macs``).

>>> import symshape as ss
>>> rep = ss.trace(ss.zoo.seed_case2(), "1,3,H,W")
>>> rep.macs
1200*H*W + 18432*floor(H/4)*floor(W/4) + 4608*floor(H/2)*floor(W/2) + 10240
>>> count = rep.macs_as("ptflops")
>>> count.total
1312*H*W + 18880*floor(H/4)*floor(W/4) + 4832*floor(H/2)*floor(W/2) + 10250
>>> [rep.macs_as(tool).at(H=32, W=32) for tool in ("torchvision", "fvcore", "ptflops", "thop", "torchinfo")]
[3598336, 3655680, 3799050, 3713024, 3627242]
>>> count.layers[:2]
(('layer1.0', 'Conv2d', 1216*H*W), ('layer1.1', 'BatchNorm2d', 32*H*W))
>>> count.source.split(":")[0]
'ptflops 0.7.5'
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..forms import factored_sum
from ..report import Report, plain, report_method
from ..symbols import ShapeError
from . import fvcore, ptflops, thop, torchinfo
from ._layers import Context

__all__ = ["Count", "CONVENTIONS", "macs_as"]

#: The conventions by name: their rule tables (modules with NAME, VERSION, SOURCE, NOTES, RULES, default).
CONVENTIONS = {"torchvision": None, "fvcore": fvcore, "ptflops": ptflops, "thop": thop, "torchinfo": torchinfo}

_TORCHVISION_SOURCE = ("symshape's default count (README, \"Counting convention\"), which reproduces torchvision's "
                       "published _ops and torch.utils.flop_counter.FlopCounterMode (MACs = flops / 2)")


@dataclass(frozen=True)
class Count:
    """A model's MACs as one tool counts them: ``total`` (a sympy expression of the input sizes, a
    Python int at concrete sizes), ``layers`` (``(layer name, kind, term)`` for each layer with a
    nonzero term, in order; for ptflops the term is the layer's share before ptflops' final
    ``int``), ``source`` (the tool's version and source files) and ``notes`` (what it counts,
    known bugs included)."""

    convention: str
    total: object
    layers: tuple
    source: str
    notes: tuple
    symbols: tuple = ()

    def at(self, sizes=None, **more) -> int:
        """The total at concrete sizes (all of them), as a Python int."""
        given = {**(sizes or {}), **more}
        by_name = {s.name: s for s in self.symbols}
        unknown = [k for k in given if k not in by_name]
        if unknown:
            raise ShapeError(f"{unknown[0]!r} is not a size of this model; its sizes are "
                             f"{', '.join(by_name) or 'none'}")
        value = sympy.sympify(self.total).subs({by_name[k]: sympy.Integer(v) for k, v in given.items()})
        if not value.is_Integer:
            missing = ", ".join(sorted(str(s) for s in value.free_symbols)) or "none"
            raise ShapeError(f"give every size to count at: missing {missing}")
        return int(value)

    def __repr__(self) -> str:
        return f"<Count {self.convention}: {self.total}>"


@report_method
def macs_as(self: Report, convention: str = "torchvision", training: bool = False) -> Count:
    """The MACs that *convention* ("torchvision", "fvcore", "ptflops", "thop" or "torchinfo")
    reports for this model, as a :class:`Count`, the tool's conventions and known bugs included.

    The tools run the model in eval mode (ptflops and thop switch to it themselves); with
    ``training=True`` fvcore's count of BatchNorm is its training-mode count. A layer whose count
    depends on something the report does not record raises ShapeError naming the layer.
    """
    if convention not in CONVENTIONS:
        raise ShapeError(f"unknown counting convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    if convention == "torchvision":
        terms = tuple((layer.name, layer.kind, layer.macs) for layer in self.layers if layer.macs != 0)
        return Count(convention, self.macs, terms, _TORCHVISION_SOURCE, (), tuple(self.symbols))
    table = CONVENTIONS[convention]
    first = self.input_shape[0] if len(self.input_shape) else sympy.Integer(1)
    ctx = Context(convention, first, training)
    terms, sums = [], ([], [])
    for layer in self.layers:
        rule = table.RULES.get(layer.kind, table.default)
        term = rule(layer, ctx)
        if convention == "ptflops":
            sums[0].append(term[0])
            sums[1].append(term[1])
            term = term[0] / first + term[1]
        if term != 0:
            terms.append((layer.name, layer.kind, plain(term)))
    total = ptflops.total(factored_sum(sums[0]), factored_sum(sums[1]), ctx) if convention == "ptflops" else \
        factored_sum(t for *_, t in terms)
    total = plain(total)
    return Count(convention, total, tuple(terms), table.SOURCE, table.NOTES, tuple(self.symbols))
