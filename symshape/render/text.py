"""The plain-text per-layer table."""
from __future__ import annotations

import sympy

from ..monotone import implied_by_bounds
from ..printing import fmt
from ..receptive import receptive_fields
from ..report import report_method

__all__ = ["table", "domain_summary", "domain_relations"]

CONVENTION = "MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs"


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


@report_method(name="__str__")
def table(report) -> str:
    """The report as an aligned text table with totals, the domain and the MAC convention; the
    last column is each layer's receptive field r/j/P (size, effective stride, effective padding)
    where its output keeps spatial dims of the input."""
    fields = receptive_fields(report)
    with_rf = any(f is not None for f in fields)
    rows = [("layer", "type", "output shape", "params", "MACs") + (("RF r/j/P",) if with_rf else ())]
    for layer, field in zip(report.layers, fields):
        rows.append((layer.name or "<root>", layer.kind, _shape(layer.out_shape), f"{layer.params:,}", _num(layer.macs))
                    + ((field_cell(field),) if with_rf else ()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("-" * w for w in widths)

    def line(r):
        return "  ".join(c.ljust(w) if i < 3 or i > 4 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    sizes = ", ".join(f"{k}={v}" for k, v in report.sizes.items())
    head = f"{report.model}  input {_shape(report.input_shape)}" + (f"  at {sizes}" if sizes else "")
    out = [head, line(rows[0]), rule, *(line(r) for r in rows[1:]), rule]
    out.append(f"output {_shape(report.output_shape)}")
    out.append(f"params {report.params:,}")
    out.append(f"MACs   {_num(report.macs)}")
    if report.domain:
        out.append("runs when " + ", ".join(domain_summary(report.domain)))
    out.append(CONVENTION)
    return "\n".join(out)


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
    # drop what the lower bounds already imply (e.g. BatchNorm's floor(H/4)*floor(W/4) >= 2 under H, W >= 8)
    return out + [e for e in rest if not implied_by_bounds(e, lower)]
