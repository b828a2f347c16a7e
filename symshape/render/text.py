"""The plain-text per-layer table, flat (``print(rep)``) or grouped by module path (``rep.summary(depth=N)``)."""
from __future__ import annotations

import sympy

from ..forms import factored, factored_sum, scaled
from ..implied import implies
from ..monotone import implied_by_bounds
from ..printing import fmt
from ..receptive import receptive_fields
from ..report import module_of, report_method
from ..symbols import ShapeError

__all__ = ["table", "summary", "domain_summary", "domain_relations"]

CONVENTION = "MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs"


#: the marker and footnote of layers whose formula came from torch's meta kernel (symshape.fallback)
FALLBACK_MARK = "*"
FALLBACK_NOTE = "* no symshape rule: formula from torch's meta kernel run on symbolic sizes (symshape.fallback)"


def kind_cell(layer) -> str:
    """A layer's type, marked when its formula came from torch's meta kernel."""
    return layer.kind + (FALLBACK_MARK if layer.attrs.get("fallback") else "")


def fallback_notes(layers) -> list:
    return [FALLBACK_NOTE] if any(layer.attrs.get("fallback") for layer in layers) else []


def _num(value) -> str:
    value = sympy.sympify(value, strict=True)
    if value.is_Integer:
        return f"{int(value):,}"
    return fmt(value)


def _shape(shape) -> str:
    if getattr(shape, "names", None) is not None:  # a dict of outputs
        return ", ".join(f"{k}: {'None' if s is None else _shape(s)}" for k, s in shape.items())
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) or s is None for s in shape):
        return ", ".join("None" if s is None else _shape(s) for s in shape)
    return "(" + ", ".join(fmt(d) for d in shape) + ")"


def field_cell(fields, fmt_value=fmt) -> str:
    """A layer's receptive field (:func:`symshape.receptive.receptive_fields`) as ``r/j/P``, once
    when every spatial dim has the same, else per dim joined with ``; ``; empty where there is none."""
    if not fields:
        return ""
    cells = ["/".join(fmt_value(v) for v in f) for f in fields]
    return cells[0] if len(set(cells)) == 1 else "; ".join(cells)


def memory_column(report, memory):
    """``(header, bytes per layer)`` of the memory column when *memory* asks for one (a dtype, or
    True for float32), else None; see :func:`symshape.memory.saved_column`."""
    if memory is None or memory is False:
        return None
    from ..memory import saved_column  # memory imports nothing of render/

    return saved_column(report, memory)


@report_method(name="__str__")
def table(report, memory=None) -> str:
    """The report as an aligned text table with totals, the domain and the MAC convention; the
    last column is each layer's receptive field r/j/P (size, effective stride, effective padding)
    where its output keeps spatial dims of the input. With *memory* (a dtype such as
    ``torch.bfloat16``, or True for float32), a column after the MACs gives the bytes each layer
    saves for backward in training, in that dtype (see :func:`symshape.memory.saved_column`), and a
    line under the totals their sum; without it the table has no memory column.

    >>> import torch, torch.nn as nn, symshape as ss
    >>> print(table(ss.trace(nn.Sequential(nn.Linear(8, 16), nn.GELU()), "N,8"), memory=torch.bfloat16))
    Sequential  input (N, 8)
    layer  type    output shape  params   MACs  saved (bf16)
    -----  ------  ------------  ------  -----  ------------
    0      Linear  (N, 16)          144  128*N          16*N
    1      GELU    (N, 16)            0      0          32*N
    -----  ------  ------------  ------  -----  ------------
    output (N, 16)
    params 144
    MACs   128*N
    saved  48*N bytes for backward in training (bf16)
    MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs
    """
    fields = receptive_fields(report)
    with_rf = any(f is not None for f in fields)
    mem = memory_column(report, memory)
    rows = [("layer", "type", "output shape", "params", "MACs") + ((mem[0],) if mem else ())
            + (("RF r/j/P",) if with_rf else ())]
    for k, (layer, field) in enumerate(zip(report.layers, fields)):
        rows.append((layer.name or "<root>", kind_cell(layer), _shape(layer.out_shape), f"{layer.params:,}",
                     _num(factored(layer.macs)))
                    + ((_num(mem[1][k]),) if mem else ()) + ((field_cell(field),) if with_rf else ()))
    return _render(report, rows, fallback_notes(report.layers), saved=_saved_line(mem))


def _saved_line(mem):
    if not mem:
        return None
    dtype = mem[0][mem[0].index("(") + 1:-1]
    return f"saved  {_num(factored_sum(t for b in mem[1] for t in sympy.Add.make_args(b)))} bytes for backward in training ({dtype})"


def _render(report, rows, notes=(), saved=None, sizes_too=False) -> str:
    if report.partial_note:  # a merged branch's layers: the activation and memory totals are an upper bound
        notes = [*notes, f"({report.partial_note})"]
    """The aligned table of *rows* (a header row first) under the report's heading, then the
    totals; the numeric columns (params, MACs and a memory column) are aligned right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("-" * w for w in widths)
    numeric = {3, 4} | ({5} if saved else set())

    def line(r):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    sizes = ", ".join(f"{k}={v}" for k, v in report.sizes.items())
    head = f"{report.model}  input {_shape(report.input_shape)}" + (f"  at {sizes}" if sizes else "")
    out = [head, line(rows[0]), rule, *(line(r) for r in rows[1:]), rule, *notes]
    out.append(f"output {_shape(report.output_shape)}")
    out.append(f"params {report.params:,}")
    if sizes_too:  # the grouped summary: trainable and frozen, and bytes
        out[-1] += (f" ({report.params - report.frozen:,} trainable, {report.frozen:,} frozen; "
                    f"{report.params * report.itemsize:,} bytes at {report.itemsize} bytes each)")
    out.append(f"MACs   {_num(report.macs)}")
    if sizes_too:
        out.append(f"output bytes {_num(scaled(report.itemsize, report.activations))} (every layer's output, "
                   f"{report.itemsize} bytes per element)")
    if saved:
        out.append(saved)
    if report.domain:
        out.append("runs when " + ", ".join(domain_summary(report.domain)))
    out += pieces_lines(report)
    out.append(CONVENTION)
    return "\n".join(out)


def pieces_lines(report) -> list:
    """For a piecewise report, what each piece is: where it holds, its output and its MACs."""
    if not report.pieces:
        return []
    out = [f"piecewise: the forward branches on the sizes and {len(report.pieces)} paths run (rep.pieces); "
           "the table, the totals and 'runs when' above are piece 1's"]
    for i, piece in enumerate(report.pieces, 1):
        when = ", ".join(domain_summary(piece.branch)) or "always"
        out.append(f"  piece {i} where {when}: output {_shape(piece.output_shape)}, MACs {_num(piece.macs)}")
    return out


def _groups(layers, level: int) -> dict:
    """The layers grouped by the first *level* parts of their names ("layer1.0.conv1" -> "layer1" at
    level 1), in the order each group first appears; a name with fewer parts is a group of its own."""
    groups: dict = {}
    for layer in layers:
        parts = module_of(layer.name).split(".")
        groups.setdefault(".".join(parts[:level]), []).append(layer)
    return groups


def _params(layers) -> int:
    """Parameters of the distinct modules among *layers* (a module called twice counts once)."""
    return sum({module_of(layer.name): layer.params for layer in layers}.values())


def _grouped_rows(layers, level: int, depth: int, saved=None) -> list:
    """Rows of the groups at *level*, and their sub-groups down to *depth*; *saved*: the memory
    column's bytes per layer (by ``id``), summed per group."""
    rows = []
    for key, members in _groups(layers, level).items():
        indent = "  " * (level - 1)
        leaf = all(module_of(layer.name) == key for layer in members)
        if leaf:
            kind = members[0].kind + (f" x{len(members)}" if len(members) > 1 else "")
        else:
            kind = f"{len(members)} layers"
        macs = _num(factored_sum(layer.macs for layer in members))
        mem = (_num(factored_sum(t for layer in members for t in sympy.Add.make_args(saved[id(layer)]))),) if saved else ()
        rows.append((indent + (key or "<root>"), kind, _shape(members[-1].out_shape), f"{_params(members):,}", macs)
                    + mem)
        if not leaf and level < depth:
            rows.extend(_grouped_rows(members, level + 1, depth, saved))
    return rows


@report_method
def summary(report, depth=None, memory=None) -> str:
    """The report as a table: flat, one row per layer (``print(rep)``, the default), or with *depth*
    grouped by module path down to *depth* parts of the qualified names. A group's row gives the
    sum of its layers' parameters (each module once) and MACs, its last layer's output shape, and
    "N layers" for the type (a module called N times shows its type and xN); its sub-groups follow,
    indented. Parameters that no layer holds (a class token, a position embedding) get a row. Under
    the table: trainable and frozen parameters and their bytes, and the bytes of every layer's output.
    *memory* adds the memory column, as in :func:`table` (a group's cell: its layers' sum).

    >>> import torch.nn as nn, symshape as ss
    >>> net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), nn.Flatten())
    >>> print(ss.trace(net, "1,3,H,W").summary(depth=1))
    Sequential  input (1, 3, H, W)
    layer  type      output shape            params                 MACs
    -----  --------  ----------------------  ------  -------------------
    0      2 layers  (1, 8, H - 2, W - 2)       224  216*(H - 2)*(W - 2)
    1      Flatten   (1, 8*(H - 2)*(W - 2))       0                    0
    -----  --------  ----------------------  ------  -------------------
    output (1, 8*(H - 2)*(W - 2))
    params 224 (224 trainable, 0 frozen; 896 bytes at 4 bytes each)
    MACs   216*(H - 2)*(W - 2)
    output bytes 96*(H - 2)*(W - 2) (every layer's output, 4 bytes per element)
    runs when H >= 3, W >= 3
    MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs
    """
    if depth is None:
        return table(report, memory)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ShapeError(f"depth must be a positive integer (1: the top-level modules), got {depth!r}")
    mem = memory_column(report, memory)
    saved = {id(layer): b for layer, b in zip(report.layers, mem[1])} if mem else None
    rows = [("layer", "type", "output shape", "params", "MACs") + ((mem[0],) if mem else ())]
    rows += _grouped_rows(report.layers, 1, depth, saved)
    outside = report.params - _params(report.layers)
    if outside > 0:
        rows.append(("(no layer)", "parameters", "", f"{outside:,}", "0") + (("0",) if mem else ()))
    notes = [f"(layers share parameters: the rows count {-outside:,} of them more than once)"] if outside < 0 else []
    notes += fallback_notes(report.layers)
    return _render(report, rows, notes, _saved_line(mem), sizes_too=True)


def domain_summary(domain) -> list:
    """The domain for reading: per symbol the tightest of the ``X >= c`` and ``X <= c`` bounds,
    then every other condition, each once."""
    return [fmt(e) for e in domain_relations(domain)]


def domain_relations(domain) -> list:
    """The relations behind :func:`domain_summary`, as sympy relations: per symbol the tightest
    bounds, then every other condition that those lower bounds do not already imply."""
    lower, upper, rest = {}, {}, []
    for cond in domain:
        e = cond.expr
        if isinstance(e, (sympy.GreaterThan, sympy.LessThan)) and e.lhs.is_Symbol and e.rhs.is_Integer:
            bounds, pick = (lower, max) if isinstance(e, sympy.GreaterThan) else (upper, min)
            bounds[e.lhs] = pick(bounds.get(e.lhs, e.rhs), e.rhs)
        elif e not in rest:
            rest.append(e)
    out = [sympy.Ge(s, v) for s, v in lower.items()] + [sympy.Le(s, v) for s, v in upper.items()]
    pins = {e.lhs: e.rhs for e in rest if isinstance(e, sympy.Equality) and e.lhs.is_Symbol and e.rhs.is_Integer}
    # drop what the lower bounds already imply (e.g. BatchNorm's floor(H/4)*floor(W/4) >= 2 under H, W >= 8),
    # and what a size fixed to one value decides (H ≠ 240 where H = 224)
    pinned = [sympy.Eq(k, v) for k, v in pins.items()]

    def decided(e) -> bool:
        return bool(pins) and e not in pinned and e.xreplace(pins) is sympy.true

    rest = [e for e in rest if not implied_by_bounds(e, lower) and not decided(e)]
    return out + [e for i, e in enumerate(rest)  # and what another condition implies (implied.py; of two
                  # that imply each other, the later stays)
                  if not any(implies(d, e) for d in rest[i + 1:]) and not any(implies(d, e) and not implies(e, d)
                                                                           for d in rest[:i])]
