"""Receptive fields as formulas: size r, effective stride j and effective padding P per layer.

Unit i of a layer's output (along one spatial dim) sees the input rows from ``-P + i·j`` to
``-P + i·j + r - 1``; its centre lies at ``-P + i·j + (r - 1)/2``. Along the graph's edges
(``Layer.inputs``) and windows (``Layer.windows``) the three follow the recurrences

* conv / pool (kernel k, stride s, padding p, dilation d): r' = r + (k - 1)·d·j, j' = j·s, P' = P + p·j;
* transposed conv and nearest upsampling (a transposed window: k = s): j' = j/s,
  r' = r + (e - 1)/s·j, P' = P + (e - 1 - p)/s·j with e = d(k - 1) + 1: Rationals, exact for the
  units i with i + p - e + 1 ≡ 0 (mod s), a hull of the others;
* padding and cropping: a window of kernel 1 whose padding is the pad (negative: the crop).

Ops that keep the spatial sizes (activations, normalisation, dropout, products with gates that
broadcast along the dim) pass r, j, P through, as pointwise in space: the statistics of a norm, a
global gate or a softmax along a spatial dim are not windows, and are not counted.
Where branches meet (residual add, concat along channels) the field is the hull of the branches:
P = max P_b, r = max(r_b - P_b) + P. Branches that disagree are reported as misaligned; with the
same stride the hull is exact, with different strides it is not. Ops that rearrange dims
(flatten, reshape, permute) or change a size without a window (adaptive pools) end the field.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Optional

import sympy

from .evaluate import substitute
from .printing import expr_text, fmt
from .report import Outputs, Report, report_method
from .symbols import ShapeError

__all__ = ["ReceptiveField", "Misaligned", "receptive_field", "layer_fields"]

#: Layer kinds (module class names, function names, Tensor.method) that move elements between dims.
REARRANGING = {
    "flatten", "unflatten", "view", "reshape", "view_as", "reshape_as", "permute", "transpose", "transpose_", "t",
    "swapaxes", "swapdims", "movedim", "moveaxis", "roll", "flip", "fliplr", "flipud", "rot90", "pixelshuffle",
    "pixel_shuffle", "pixelunshuffle", "pixel_unshuffle", "expand", "expand_as", "repeat", "unfold", "fold",
    "squeeze", "unsqueeze", "contiguous_format",
}


@dataclass(frozen=True)
class _F:
    """The field of one output dim: r, j, P and the index of the input's spatial dim it refers to."""

    r: object
    j: object
    P: object
    dim: int


@dataclass(frozen=True)
class Misaligned:
    """Branches meeting at ``layer`` disagree along input dim ``dim`` (a name such as ``H``) in
    stride or in the centre of their units' windows (branches of different sizes around the same
    centre, as in a residual block, are nested, not misaligned): ``branches`` lists each one's
    (r, j, P); ``exact`` is False where their strides differ (then no r, j, P is exact for every unit)."""

    layer: str
    kind: str
    dim: str
    branches: tuple
    exact: bool

    def __str__(self) -> str:
        parts = "; ".join(f"r={fmt(r)}, j={fmt(j)}, P={fmt(p)}" for r, j, p in self.branches)
        what = "centre (effective padding)" if self.exact else "stride"
        return f"layer {self.layer!r} ({self.kind}) dim {self.dim}: branches differ in {what}: {parts}"


def _same(a, b) -> bool:
    if a == b:
        return True
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def _num(x):
    x = sympy.nsimplify(x) if isinstance(x, float) else sympy.sympify(x)
    return x


def _max(values):
    """The largest of *values*: decided where one is never below the others (for every size),
    else an unevaluated Max (sympy's own evaluation of Max over floors is slow)."""
    from .decide import always_nonnegative

    values = [_num(v) for v in values]
    if all(v.is_Number for v in values):
        return max(values)
    kept = []
    for v in values:
        if any(always_nonnegative(k - v) for k in kept):
            continue
        kept = [k for k in kept if not always_nonnegative(v - k)] + [v]
    return kept[0] if len(kept) == 1 else sympy.Max(*kept, evaluate=False)


def _window_step(f: _F, w) -> _F:
    """One window applied to a field (the recurrences of the module docstring)."""
    if w.transposed:
        s = sympy.Integer(w.stride)
        return _F(f.r + sympy.Rational(w.extent - 1) / s * f.j, f.j / s, f.P + (w.extent - 1 - w.padding) / s * f.j,
                  f.dim)
    return _F(f.r + (w.kernel - 1) * w.dilation * f.j, f.j * w.stride, f.P + w.padding * f.j, f.dim)


def _first_shape(value):
    if isinstance(value, Outputs):
        shapes = value.shapes
        return shapes[0] if shapes else None
    return value


def layer_fields(report: Report) -> tuple:
    """Per layer of *report*, the fields of its (first) output: a tuple over its dims of
    :class:`_F` or None; and the list of :class:`Misaligned` records, as ``(fields, misaligned)``."""
    inp = report.input_shape
    nd = len(inp) - 2 if len(inp) >= 3 else 0
    one, zero = sympy.Integer(1), sympy.Integer(0)
    start = tuple([None] * (len(inp) - nd) + [_F(one, one, zero, k) for k in range(nd)])
    fields, misaligned = [], []
    names = _dim_names(inp, nd)
    for layer, edges in zip(report.layers, _edges(report)):
        out = _first_shape(layer.out_shape)
        if not isinstance(out, tuple):
            fields.append(None)
            continue
        ins = []
        for shape, src in zip(layer.in_shapes, edges):
            if not isinstance(shape, tuple) or isinstance(shape, Outputs) or src is None:
                continue
            f = start if src == -1 else fields[src]
            ins.append((shape, f))
        fields.append(_combine(layer, out, ins, misaligned, names))
    return tuple(fields), misaligned


def _edges(report) -> list:
    """Per layer, the producer of each input (``Layer.inputs``); a report without edges (written
    by an older symshape) is read as a chain, each layer fed by the one before."""
    chain = not any(layer.inputs for layer in report.layers)
    return [layer.inputs or ((k - 1,) * len(layer.in_shapes) if chain else (None,) * len(layer.in_shapes))
            for k, layer in enumerate(report.layers)]


def _dim_names(inp, nd: int) -> list:
    """The spatial dims of the input by name (``H``), or ``dim 2`` where the size is a number."""
    return [fmt(d) if not d.is_Integer else f"dim {len(inp) - nd + k}" for k, d in enumerate(inp[len(inp) - nd:])]


def _combine(layer, out, ins, misaligned, names):
    base = layer.kind.split(".")[-1].lower()
    if layer.windows:
        if not ins or ins[0][1] is None or len(ins[0][0]) != len(out):
            return None
        shape, f_in = ins[0]
        res = list(f_in)
        offset = len(out) - len(layer.windows)
        for t, w in enumerate(layer.windows):
            if w is None:
                continue
            f = f_in[offset + t]
            res[offset + t] = None if f is None else _window_step(f, w)
        return tuple(res)
    if base in REARRANGING:
        return None
    res = []
    for t in range(len(out)):
        back = len(out) - t
        got, sizes, lost = [], [], False
        for shape, f_in in ins:
            if len(shape) < back:
                continue
            size = shape[len(shape) - back]
            if size == 1 and out[t] != 1:
                continue  # broadcast along this dim: the same value for every unit
            if f_in is None or len(f_in) != len(shape):
                lost = True
                break
            got.append(f_in[len(shape) - back])
            sizes.append(size)
        # the dim is kept where the output's size is an input's (sizes equal on the domain: add,
        # concat along another dim); a concat along this dim sums the sizes, and ends the field
        if sizes and not any(_same(size, out[t]) for size in sizes):
            lost = True
        if lost or not got or any(g is None for g in got):
            res.append(None)
            continue
        res.append(_merge(layer, got, misaligned, names))
    return tuple(res)


def _merge(layer, got, misaligned, names):
    first = got[0]
    if any(g.dim != first.dim for g in got):
        return None
    distinct = []
    for g in got:
        if not any(_same(g.r, d.r) and _same(g.j, d.j) and _same(g.P, d.P) for d in distinct):
            distinct.append(g)
    if len(distinct) == 1:
        return first
    same_stride = all(_same(g.j, first.j) for g in distinct)
    P = _max([g.P for g in distinct])
    r = _max([g.r - g.P for g in distinct]) + P
    j = first.j if same_stride else _max([g.j for g in distinct])
    centre = first.P - (first.r - 1) / sympy.Integer(2)
    if same_stride and all(_same(g.P - (g.r - 1) / sympy.Integer(2), centre) for g in distinct):
        return _F(r, j, P, first.dim)  # nested around the same centre (a residual block): aligned
    misaligned.append(Misaligned(layer.name, layer.kind, names[first.dim],
                                 tuple((g.r, g.j, g.P) for g in distinct), same_stride))
    return _F(r, j, P, first.dim)


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of the units of layer ``layer``'s output, per spatial dim of the input
    (``dims``, e.g. ``('H', 'W')``): ``size`` r, ``stride`` j (effective stride) and ``padding``
    P (effective padding), each a tuple of ints or sympy expressions (Rationals after transposed
    convolutions and upsampling). ``exact`` is False where branches with different strides meet
    (then the numbers are maxima) and after transposed windows (``transposed`` names those
    layers: there the units' windows differ with their phase, and -P + i·j .. -P + i·j + r - 1
    contains every unit's window, equal to it for the units on the input's grid);
    ``misaligned`` lists the branch points that disagree;
    ``steps`` the per-layer recurrences that :meth:`explain` prints."""

    layer: str
    kind: str
    dims: tuple
    size: tuple
    stride: tuple
    padding: tuple
    exact: bool = True
    misaligned: tuple = ()
    transposed: tuple = ()
    steps: tuple = field(default=(), repr=False, compare=False)

    def start(self, i=0) -> tuple:
        """Where unit *i*'s window starts in input coordinates, per dim: -P + i·j (a tuple of
        indices, one per dim, or one index used for every dim)."""
        idx = i if isinstance(i, (tuple, list)) else (i,) * len(self.dims)
        return tuple(_plain(-p + n * j) for p, n, j in zip(self.padding, idx, self.stride))

    def end(self, i=0) -> tuple:
        """Where unit *i*'s window ends (inclusive): -P + i·j + r - 1."""
        return tuple(_plain(s + r - 1) for s, r in zip(self.start(i), self.size))

    def centre(self, i=0) -> tuple:
        """The centre of unit *i*'s window: -P + i·j + (r - 1)/2."""
        return tuple(_plain(s + sympy.Rational(1, 2) * (r - 1)) for s, r in zip(self.start(i), self.size))

    def at(self, sizes=None, **more) -> "ReceptiveField":
        """The field at the given sizes (names to positive integers), dims keeping their names.

        >>> import symshape as ss
        >>> rep = ss.trace(ss.zoo.vgg16(), "1,3,H,W")
        >>> print(rep.receptive_field("features.4").at(H=32, W=32))
        receptive field of 'features.4': H: r=6 j=2 P=2, W: r=6 j=2 P=2
        """
        given = {**(sizes or {}), **more}

        def ev(v):
            v = sympy.sympify(v)
            values = {s: sympy.Integer(given[s.name]) for s in v.free_symbols if s.name in given}
            return _plain(substitute(v, values, {})) if values else _plain(v)

        return replace(self, size=tuple(ev(v) for v in self.size), stride=tuple(ev(v) for v in self.stride),
                       padding=tuple(ev(v) for v in self.padding))

    def to_data(self) -> dict:
        """Plain data: expressions as exact text that :func:`symshape.parse_expr` reads back."""
        return {"layer": self.layer, "kind": self.kind, "dims": list(self.dims),
                "size": [expr_text(v) for v in self.size], "stride": [expr_text(v) for v in self.stride],
                "padding": [expr_text(v) for v in self.padding], "exact": self.exact,
                "transposed": list(self.transposed),
                "misaligned": [str(m) for m in self.misaligned]}

    def explain(self) -> str:
        """The recurrences layer by layer, with the numbers, then the result."""
        lines = [f"receptive field of layer {self.layer!r} ({self.kind}): unit i sees input rows "
                 f"-P + i·j to -P + i·j + r - 1; from r = 1, j = 1, P = 0 at the input:"]
        lines += [f"  {s}" for s in self.steps]
        for d, r, j, p in zip(self.dims, self.size, self.stride, self.padding):
            lines.append(f"{d}: r = {fmt(r)}, j = {fmt(j)}, P = {fmt(p)}")
        if self.transposed:
            lines.append(f"after the transposed windows of {', '.join(repr(t) for t in self.transposed)}: a bound that "
                         f"contains every unit's window (rational: units at different phases see different rows)")
        if self.misaligned:
            lines.append("misaligned branches" + ("" if self.exact else " (the numbers are maxima, not exact)") + ":")
            lines += [f"  {m}" for m in self.misaligned]
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = ", ".join(f"{d}: r={fmt(r)} j={fmt(j)} P={fmt(p)}"
                          for d, r, j, p in zip(self.dims, self.size, self.stride, self.padding))
        why = " (a bound: transposed windows)" if self.transposed and all(m.exact for m in self.misaligned) else \
            " (not exact)"
        return f"receptive field of {self.layer!r}: {parts}" + ("" if self.exact else why)


def _plain(v):
    v = sympy.sympify(v)
    return int(v) if v.is_Integer else v


def tidy(expr):
    """*expr* in its shortest exact form: one floor where the floors of a size collapse to one
    (:func:`~symshape.forms.compact`), or ``Mod(a·H + b, m) + c`` where they are periodic in H
    (TF-style "same" padding: the effective padding of k3/s2 twice is (-H) mod 4, ``Mod(3*H, 4)``).

    >>> from symshape.floors import floor_div
    >>> H = sympy.Symbol("H", integer=True, positive=True)
    >>> tidy(H - 2 * floor_div(H, 2) + 2 * (floor_div(H + 1, 2) - 2 * floor_div(floor_div(H + 1, 2), 2)))
    Mod(3*H, 4)
    """
    return _tidy(sympy.sympify(expr))


@functools.lru_cache(maxsize=4096)
def _tidy(expr):
    from .decide import _period, _values
    from .forms import compact
    from .floors import canonical

    if expr.is_number or not (expr.has(sympy.floor) or expr.has(sympy.Mod) or expr.has(sympy.ceiling)):
        return expr
    if expr.has(sympy.Max) or expr.has(sympy.Min):  # hulls of branches: left as they are
        return expr
    try:
        expr = compact(canonical(expr))
    except Exception:  # noqa: BLE001  (a form compact does not handle: left as it is)
        return expr
    syms = expr.free_symbols
    if len(syms) != 1 or not expr.has(sympy.floor):
        return expr
    (x,) = syms
    try:
        period = _period(expr, x)
        if period > 256:
            return expr
        vals = _values(expr, x, period)
    except Exception:  # noqa: BLE001
        return expr
    if vals[period] != vals[0] or any(v.denominator != 1 for v in vals):
        return expr
    period = next(p for p in range(1, period + 1) if period % p == 0 and all(
        vals[n] == vals[n % p] for n in range(period)))
    for a in sorted(range(-period + 1, period), key=abs):
        for b in range(period):
            c = vals[0] - (a + b) % period
            if all(vals[n - 1] == (a * n + b) % period + c for n in range(1, period + 1)):
                return sympy.Mod(a * x + b, period) + int(c)
    return expr


def _ancestors(edges, index) -> set:
    seen, todo = set(), [index]
    while todo:
        i = todo.pop()
        if i in seen or i is None or i < 0:
            continue
        seen.add(i)
        todo.extend(x for x in edges[i] if x is not None)
    return seen


def _hull_lines(layer, i, edges, fields, names) -> list:
    """For a layer where branches meet, per dim, the branches and their hull."""
    out = _first_shape(layer.out_shape)
    lines = []
    for t, after in enumerate(fields[i]):
        if after is None:
            continue
        branches = []
        for shape, src in zip(layer.in_shapes, edges[i]):
            if src is None or not isinstance(shape, tuple) or isinstance(shape, Outputs):
                continue
            back = len(out) - t
            if len(shape) < back:
                continue
            f = (_F(1, 1, 0, after.dim) if src == -1 else
                 (fields[src][len(shape) - back] if fields[src] is not None else None))
            if f is not None and not any(_same(f.r, b.r) and _same(f.j, b.j) and _same(f.P, b.P) for b in branches):
                branches.append(f)
        if len(branches) < 2:
            continue
        parts = "; ".join(f"r={fmt(tidy(b.r))}, j={fmt(tidy(b.j))}, P={fmt(tidy(b.P))}" for b in branches)
        lines.append(f"{layer.name!r} ({layer.kind}) {names[after.dim]}: the hull of its branches ({parts}): "
                     f"P = max P_b = {fmt(tidy(after.P))}, r = max(r_b - P_b) + P = {fmt(tidy(after.r))}, "
                     f"j = {fmt(tidy(after.j))}")
    return lines


def _steps(report, fields, keep, names, edges) -> list:
    """The recurrence lines of the windowed layers in *keep*, and the hulls where branches meet,
    with the numbers."""
    lines = []
    for i in sorted(keep):
        layer = report.layers[i]
        if fields[i] is None:
            continue
        if not layer.windows:
            if sum(1 for e in edges[i] if e is not None) > 1:
                lines += _hull_lines(layer, i, edges, fields, names)
            continue
        if not edges[i] or edges[i][0] is None:
            continue
        src = edges[i][0]
        out = _first_shape(layer.out_shape)
        before = None if src == -1 else fields[src]
        offset = len(out) - len(layer.windows)
        for t, w in enumerate(layer.windows):
            after = fields[i][offset + t]
            if w is None or after is None:
                continue
            f = _F(1, 1, 0, after.dim) if src == -1 else before[offset + t]
            w = replace(w, padding=tidy(w.padding), padding_right=None if w.padding_right is None else tidy(w.right))
            lines.append(f"{layer.name!r} ({layer.kind}) {names[after.dim]}: {w.describe()}: {step_text(w, f, after)}")
    return lines


def step_text(w, before, after, ev=lambda v: v) -> str:
    """One window's recurrences with the numbers: ``r = 1 + (7 - 1)·1·1 = 7, j = 1·2 = 2, P = 0 + 3·1 = 3``
    (*ev* evaluates each value first, e.g. at sizes)."""
    pad = ev(tidy(w.padding))
    p = fmt(pad) if isinstance(_plain(pad), int) else f"({fmt(pad)})"
    r, j, P = (fmt(_plain(ev(tidy(v)))) for v in (before.r, before.j, before.P))
    r2, j2, P2 = (fmt(_plain(ev(tidy(v)))) for v in (after.r, after.j, after.P))
    if w.transposed:
        return (f"r = {r} + ({w.extent} - 1)/{w.stride}·{j} = {r2}, j = {j}/{w.stride} = {j2}, "
                f"P = {P} + ({w.extent} - 1 - {p})/{w.stride}·{j} = {P2}")
    return f"r = {r} + ({w.kernel} - 1)·{w.dilation}·{j} = {r2}, j = {j}·{w.stride} = {j2}, P = {P} + {p}·{j} = {P2}"


def window_steps(report: Report, sizes=None) -> dict:
    """For each layer index with windows on a field, ``[(dim name, recurrence text)]`` per spatial
    dim, evaluated at *sizes* (names to ints) when given: what :func:`symshape.render.explain`
    prints under each conv and pool."""
    fields, _ = layer_fields(report)
    edges = _edges(report)
    inp = report.input_shape
    nd = len(inp) - 2 if len(inp) >= 3 else 0
    names = _dim_names(inp, nd)
    given = dict(sizes or {})

    def ev(v):
        v = sympy.sympify(v)
        values = {s: sympy.Integer(given[s.name]) for s in v.free_symbols if s.name in given}
        return substitute(v, values, {}) if values else v

    out = {}
    for i, layer in enumerate(report.layers):
        if not layer.windows or fields[i] is None or not edges[i] or edges[i][0] is None:
            continue
        src = edges[i][0]
        offset = len(_first_shape(layer.out_shape)) - len(layer.windows)
        rows = []
        for t, w in enumerate(layer.windows):
            after = fields[i][offset + t]
            if w is None or after is None:
                continue
            before = _F(1, 1, 0, after.dim) if src == -1 else fields[src][offset + t]
            rows.append((names[after.dim], step_text(w, before, after, ev)))
        if rows:
            out[i] = rows
    return out


@report_method
def receptive_field(report: Report, name: Optional[str] = None) -> ReceptiveField:
    """The receptive field of the units of layer *name* (a qualified name, or a container's: its
    last layer; default: the last layer whose output still has spatial dims), as formulas of the
    input sizes.

    >>> import symshape as ss
    >>> rf = ss.trace(ss.zoo.vgg16(), "1,3,H,W").receptive_field("features.30")
    >>> rf.size, rf.stride, rf.padding
    ((212, 212), (32, 32), (90, 90))
    >>> rf.start(1), rf.centre(0)
    ((-58, -58), (31/2, 31/2))
    """
    fields, misaligned = layer_fields(report)
    inp = report.input_shape
    nd = len(inp) - 2 if len(inp) >= 3 else 0
    names = _dim_names(inp, nd)
    if nd == 0:
        raise ShapeError(f"the input {inp!r} has no spatial dims: a receptive field needs an (N, C, *spatial) input")
    if name is None:
        index = next((i for i in range(len(report.layers) - 1, -1, -1)
                      if fields[i] is not None and any(f is not None for f in fields[i])), None)
        if index is None:
            raise ShapeError("no layer of the model keeps a spatial dim of the input")
    else:
        found = [i for i, layer in enumerate(report.layers) if layer.name == name or layer.name.startswith(name + ".")]
        if not found:
            raise ShapeError(f"no layer named {name!r}; layers: "
                             + ", ".join(repr(layer.name) for layer in report.layers[:12])
                             + (", ..." if len(report.layers) > 12 else ""))
        exact = [i for i in found if report.layers[i].name == name]
        index = max(exact or found)  # a container: its last layer
        if fields[index] is None or all(f is None for f in fields[index]):
            layer = report.layers[index]
            raise ShapeError(f"layer {name!r} ({layer.kind}) outputs {layer.out_shape!r}, which has no spatial dim that "
                             f"maps to the input's by windows: its field is lost at a flatten, reshape, adaptive pool "
                             f"or resize before it; ask for an earlier layer")
    layer = report.layers[index]
    dims = [f for f in fields[index] if f is not None]
    edges = _edges(report)
    keep = _ancestors(edges, index)
    def ev(v):
        v = tidy(v)
        if report.sizes and v.free_symbols:  # a report at sizes: 'same' paddings are formulas of them
            v = substitute(v, {s: sympy.Integer(report.sizes[s.name]) for s in v.free_symbols
                               if s.name in report.sizes}, {})
        return _plain(v)

    mis = tuple(m for m in misaligned if any(report.layers[i].name == m.layer for i in keep))
    transposed = tuple(report.layers[i].name for i in sorted(keep)
                       if fields[i] is not None and any(w is not None and w.transposed for w in report.layers[i].windows))
    return ReceptiveField(
        layer=layer.name, kind=layer.kind, dims=tuple(names[f.dim] for f in dims),
        size=tuple(ev(f.r) for f in dims), stride=tuple(ev(f.j) for f in dims), padding=tuple(ev(f.P) for f in dims),
        exact=all(m.exact for m in mis) and not transposed, misaligned=mis, transposed=transposed,
        steps=tuple(_steps(report, fields, keep, names, edges)),
    )


@report_method
def receptive_fields(report: Report) -> tuple:
    """Per layer, ``(r, j, P)`` tuples over the spatial dims its output keeps (None where none)."""
    fields, _ = layer_fields(report)
    return tuple(None if fs is None or all(f is None for f in fs) else
                 tuple(tuple(_plain(tidy(v)) for v in (f.r, f.j, f.P)) for f in fs if f is not None) for fs in fields)
