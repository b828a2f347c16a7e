"""A bridge to torch.export: the ``dynamic_shapes`` argument, from the solved valid sizes.

``rep.dynamic_shapes()`` turns the sizes at which a traced model runs into ``torch.export.Dim``
objects: the min and max of each size, a step as a derived dim (``16*Dim("H_16")`` for
``H ≡ 0 (mod 16)``) and an offset where the class needs one (``4*Dim("H_4") + 3`` for
``H ≡ 3 (mod 4)``).

torch.export specializes the sizes 0 and 1 (it traces a dynamic size as "at least 2", and a
layer whose output size can be 1 or more adds a guard that refuses 1). So the sizes given here
are the valid sizes at which every size that varies, in the input and in every layer's output,
is at least 2, unless it is 1 throughout the box (:func:`export_conditions`). That is on the
safe side: export succeeds and the program runs at every size in the range (tested on the zoo),
though torch may not guard every such size; sizes left out need an export of their own.

>>> import symshape as ss
>>> rep = ss.trace(ss.zoo.unet_same(), "1,1,H,W")
>>> print(rep.valid_inputs())
H ≡ 0 (mod 16), H ≥ 16, W ≡ 0 (mod 16), W ≥ 16
>>> rep.dynamic_shapes()
({2: 16*H_16, 3: 16*W_16},)
>>> print(export_sizes(rep))
H ≡ 0 (mod 16), H ≥ 32, W ≡ 0 (mod 16), W ≥ 32
"""
from __future__ import annotations

import itertools

import sympy

from .printing import fmt
from .report import report_method
from .sets import IntSet, SolutionSet
from .symbols import ShapeError

__all__ = ["dynamic_shapes", "export_conditions", "export_sizes", "export_boxes"]


def _varying(rep) -> list:
    """Each distinct size that depends on the input sizes: the size symbols themselves (each is a
    Dim, which torch.export takes as at least 2 even where the input dim is ``2*B`` or ``H + 2``),
    the input's dims, then each dim of each layer's outputs."""
    seen, out = set(), []
    for shape in [rep.symbols, rep.input_shape] + [s for layer in rep.layers for s in layer.out_shapes]:
        for d in shape:
            if isinstance(d, sympy.Expr) and d.free_symbols and d not in seen:
                seen.add(d)
                out.append(d)
    return out


def export_conditions(rep, pieces, symbols) -> list:
    """``d >= 2`` for every size *d* that varies (see :func:`_varying`) and is not 1 throughout the
    box *pieces* (one ``(lo, hi, m, r)`` per symbol of *symbols*): torch.export decides a size
    that is 1 throughout from its value ranges, but refuses the value 1 of a size that can also
    be larger (layer output sizes grow with the input sizes, so the corners of the box bound them)."""
    low = {s: p[0] for s, p in zip(symbols, pieces)}
    high = {s: p[1] for s, p in zip(symbols, pieces)}
    out = []
    for d in _varying(rep):
        if None not in (high[s] for s in d.free_symbols) and d.subs(low) == 1 and d.subs(high) == 1:
            continue
        out.append(sympy.Ge(d, 2))
    return out


def export_boxes(sizes: SolutionSet) -> list:
    """The boxes of *sizes* with one range and one step per size: each box of the solution
    set, split into its pieces ``(lo, hi, m, r)`` (one tuple per free symbol)."""
    return [combo for box in sizes.boxes for combo in itertools.product(*(s.pieces for s in box))]


def export_sizes(rep, bounds=None) -> SolutionSet:
    """The valid sizes that torch.export can take as dynamic: in each box of
    :meth:`~symshape.report.Report.valid_inputs`, the sizes that meet :func:`export_conditions`."""
    valid = rep.valid_inputs(bounds=bounds)
    if valid.ties:
        raise ShapeError(f"the valid sizes tie sizes together ({valid}); dynamic_shapes takes independent sizes")
    boxes = []
    for pieces in export_boxes(valid):
        conds = export_conditions(rep, pieces, valid.free)
        within = {s.name: (p[0], p[1]) for s, p in zip(valid.free, pieces)}
        part = rep.solve(*conds, bounds=within)
        for box in part.boxes:
            boxes.append(tuple(s & IntSet([p]) for s, p in zip(box, pieces)))
    return SolutionSet(valid.symbols, boxes, method="export", reason="" if boxes else
                       "torch.export needs every size that varies to be at least 2, and no valid size allows that")


def _box_text(sizes: SolutionSet, pieces) -> str:
    return str(SolutionSet(sizes.symbols, [tuple(IntSet([p]) for p in pieces)], sizes.ties))


def _choose(sizes: SolutionSet, boxes: list, box):
    if box is None:
        if len(boxes) == 1:
            return boxes[0]
        listed = "; ".join(f"box={i}: {_box_text(sizes, b)}" for i, b in enumerate(boxes))
        raise ShapeError(
            f"the sizes torch.export can take are {len(boxes)} separate boxes, and torch.export takes one range "
            f"(and one step) per size: choose one with box=: {listed}; or pass box={{name: size, ...}} "
            f"for the box that holds those sizes")
    if isinstance(box, dict):
        point = sizes._point(box) if set(box) <= {s.name for s in sizes.symbols} | set(sizes.symbols) else None
        if point is None or set(point) != set(sizes.symbols):
            names = ", ".join(s.name for s in sizes.symbols)
            raise ShapeError(f"box= takes a size for each of {names}, got {box!r}")
        for b in boxes:
            if all(point[s] in IntSet([p]) for s, p in zip(sizes.free, b)) and \
                    all(point[s] == point[t] for s, t in sizes.ties.items()):
                return b
        at = ", ".join(f"{s.name}={v}" for s, v in point.items())
        raise ShapeError(f"no box of the sizes torch.export can take holds {at}; they are: {sizes}")
    if isinstance(box, bool) or not isinstance(box, int) or not 0 <= box < len(boxes):
        raise ShapeError(f"box= takes an index from 0 to {len(boxes) - 1} or a dict of sizes, got {box!r}")
    return boxes[box]


def _dim(name: str, piece):
    """The Dim (or derived dim) whose values are exactly the piece ``(lo, hi, m, r)``; None for
    a single value (a static size)."""
    from torch.export import Dim

    lo, hi, m, r = piece
    if hi is not None and hi == lo:
        return None
    if m == 1:
        return Dim(name, min=lo) if hi is None else Dim(name, min=lo, max=hi)
    # x = m*k + b with the root k >= 2 (torch.export treats a root, too, as a size of at least 2):
    # b is the residue r where that leaves the root at least 2, else lo - 2m (still ≡ r)
    k_lo = (lo - r) // m
    if k_lo < 2:
        k_lo = 2
    b = lo - m * k_lo
    root_name = f"{name}_{m}"
    root = Dim(root_name, min=k_lo) if hi is None else Dim(root_name, min=k_lo, max=k_lo + (hi - lo) // m)
    return m * root + b if b else m * root


def _linear(expr, sym):
    """``(a, b)`` with ``expr == a*sym + b`` for integers a > 0, b; None otherwise."""
    poly = sympy.Poly(expr, sym) if expr.is_polynomial(sym) else None
    if poly is None or poly.degree() != 1 or not all(c.is_Integer for c in poly.all_coeffs()):
        return None
    a, b = (int(c) for c in poly.all_coeffs())
    return (a, b) if a > 0 else None


@report_method
def dynamic_shapes(rep, box=None, bounds=None) -> tuple:
    """The ``dynamic_shapes`` argument of ``torch.export.export(model, (x,), dynamic_shapes=...)``
    for this report's input: ``({dim: Dim, ...},)``, with a ``torch.export.Dim`` for each
    size that varies (see :func:`export_sizes`: the valid sizes at which every varying size is at
    least 2, as torch.export needs). A size with a step is a derived dim (``16*Dim("H_16")``),
    with an offset where its class needs one (``4*Dim("H_4") + 3``); square inputs (``H = W``) share
    one Dim. *bounds* (as for ``valid_inputs``) caps the sizes; where they are several boxes,
    *box* chooses one (an index, or a dict of sizes in it).

    >>> import symshape as ss
    >>> ss.trace(ss.zoo.lenet5(), "1,1,H,W").dynamic_shapes()
    ({2: Dim('H', min=32, max=35), 3: Dim('W', min=32, max=35)},)
    >>> ss.trace(ss.zoo.seed_case1(), "1,3,H,W").dynamic_shapes(box={"H": 32, "W": 31})
    ({2: Dim('H', min=31, max=32), 3: Dim('W', min=31, max=32)},)
    """
    sizes = export_sizes(rep, bounds=bounds)
    if sizes.is_empty:
        raise ShapeError(f"torch.export cannot take any size of this model as dynamic: {sizes}; "
                         f"the valid sizes are {rep.valid_inputs(bounds=bounds)}")
    chosen = _choose(sizes, export_boxes(sizes), box)
    dims = {s: _dim(s.name, p) for s, p in zip(sizes.free, chosen)}
    dims.update({s: dims[t] for s, t in sizes.ties.items()})
    out = {}
    for i, d in enumerate(rep.input_shape):
        syms = d.free_symbols
        if not syms:
            continue
        if len(syms) > 1:
            raise ShapeError(f"input dim {i} is {fmt(d)}, a formula of several sizes; torch.export takes a dim "
                             f"of one size (a*S + b): give the input one symbol per dim")
        (s,) = syms
        if dims[s] is None:
            continue  # one value: a static size
        ab = _linear(d, s)
        if ab is None:
            raise ShapeError(f"input dim {i} is {fmt(d)}; torch.export takes a dim of one size as a*{s.name} + b "
                             f"with integers a > 0 and b: give the input a symbol for this dim")
        a, b = ab
        dim = dims[s] if a == 1 else a * dims[s]
        out[i] = dim + b if b else dim
    return (out,)
