"""JSON for programs: a stable, documented schema whose expressions parse back exactly.

Schema ``symshape.report/1`` (every expression is a string that :func:`symshape.symbols.parse_expr`
reads back to an equal sympy expression; a shape is a list of expressions; an op with several
outputs has a list of shapes, ``null`` for a missing one)::

    {
      "schema": "symshape.report/1",
      "model": "Sequential",                    # the model's class name
      "input_shape": ["1", "3", "H", "W"],
      "symbols": ["H", "W"],                    # the input sizes still symbolic
      "sizes": {},                              # sizes already substituted, name -> int
      "output_shape": ["1", "10"],
      "params": 58826,
      "macs": "...", "flops": "...", "activations": "...",
      "convention": "MACs: multiply-accumulates of convs and matrix products, ...",
      "layers": [{"name": "0", "kind": "Conv2d", "in_shapes": [["1", "3", "H", "W"]],
                  "out_shape": [...], "params": 4736, "macs": "...",
                  "attrs": {"kernel_size": [7, 7], "stride": [2, 2], ...}}, ...],
      "domain": [{"expr": "H >= 7", "layer": "0", "kind": "Conv2d", "why": "..."}, ...]
    }

Expressions print as :func:`symshape.fmt` does (``floor((H - 7)/2) + 1``), except that equations
are ``a == b``, congruences ``Mod(H, 32) == 0`` and torch's double-rounded scales
``ScaledFloor(H, 0.29)``, so that every string is also valid input.
"""
from __future__ import annotations

import json as _json
import sympy

from ..report import Condition, Layer, Report, Shape, report_method
from ..symbols import ShapeError, parse_expr, size_symbol
from ..printing import expr_text
from ..receptive import receptive_fields
from ..rules.window import Window
from .text import CONVENTION

__all__ = ["SCHEMA", "expr_text", "to_dict", "to_json", "from_dict", "from_json"]

SCHEMA = "symshape.report/1"


def _is_multi(shape) -> bool:
    return isinstance(shape, tuple) and bool(shape) and all(isinstance(s, tuple) or s is None for s in shape)


def _shape_out(shape):
    if _is_multi(shape):
        return [None if s is None else _shape_out(s) for s in shape]
    return [expr_text(d) for d in shape]


def _shape_in(data):
    if data and all(isinstance(s, list) or s is None for s in data):
        return tuple(None if s is None else _shape_in(s) for s in data)
    return Shape(parse_expr(d) for d in data)


def _attr_out(value):
    return list(value) if isinstance(value, tuple) else value


def _attr_in(value):
    return tuple(value) if isinstance(value, list) else value


def _edge_in(value):
    if value is None or isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return value
    raise ShapeError(f"not a symshape report: a layer's inputs are layer indices, -1 or null, got {value!r}")


def _window_out(w: Window):
    if w is None:
        return None
    data = w.to_data()
    for key in ("padding", "padding_right"):  # TF-style 'same' padding is an expression of the size
        if key in data and not isinstance(data[key], int):
            data[key] = expr_text(data[key])
    return data


def _window_in(data) -> Window:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ShapeError(f"not a symshape report: a window must be an object, got {type(data).__name__}")
    data = dict(data)
    for key in ("padding", "padding_right"):
        if isinstance(data.get(key), str):
            data[key] = parse_expr(data[key])
    return Window.from_data(data)


def _field_out(fields):
    """A layer's receptive field (:func:`symshape.receptive.receptive_fields`) as exact text."""
    if fields is None:
        return {}
    return {"receptive_field": {key: [expr_text(f[n]) for f in fields]
                                for n, key in enumerate(("size", "stride", "padding"))}}


def to_dict(report: Report) -> dict:
    """The report as plain data in the ``symshape.report/1`` schema (a layer's ``receptive_field``
    is derived data: size, stride and padding per spatial dim it keeps; read back, it is recomputed)."""
    fields = receptive_fields(report)
    return {
        "schema": SCHEMA,
        "model": report.model,
        "input_shape": _shape_out(report.input_shape),
        "symbols": [s.name for s in report.symbols],
        "sizes": dict(report.sizes),
        "output_shape": _shape_out(report.output_shape),
        "params": report.params,
        "macs": expr_text(report.macs),
        "flops": expr_text(report.flops),
        "activations": expr_text(report.activations),
        "convention": CONVENTION,
        "layers": [{
            "name": layer.name, "kind": layer.kind,
            "in_shapes": [_shape_out(s) if isinstance(s, tuple) else None for s in layer.in_shapes],
            "out_shape": _shape_out(layer.out_shape), "params": layer.params, "macs": expr_text(layer.macs),
            "attrs": {k: _attr_out(v) for k, v in layer.attrs.items()},
            **({"windows": [_window_out(w) for w in layer.windows]} if layer.windows else {}),
            **({"inputs": list(layer.inputs)} if layer.inputs else {}),
            **_field_out(field),
        } for layer, field in zip(report.layers, fields)],
        "domain": [{"expr": expr_text(c.expr), "layer": c.layer, "kind": c.kind, "why": c.why} for c in report.domain],
    }


@report_method
def to_json(report: Report, indent: int = 2) -> str:
    """The report as JSON text (schema ``symshape.report/1``).

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> data = _json.loads(to_json(ss.trace(zoo.seed_case1(), "1,3,H,W")))
    >>> data["layers"][2]["out_shape"], data["domain"][0]["expr"]
    (['1', '32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)'], 'H >= 7')
    """
    return _json.dumps(to_dict(report), indent=indent, ensure_ascii=False)


def from_dict(data: dict) -> Report:
    """A :class:`Report` from ``symshape.report/1`` data, every expression parsed safely."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ShapeError(f"not a symshape report: expected schema {SCHEMA!r}, got {got!r}")
    layers = tuple(Layer(
        name=item["name"], kind=item["kind"],
        in_shapes=tuple(None if s is None else _shape_in(s) for s in item["in_shapes"]),
        out_shape=_shape_in(item["out_shape"]), params=int(item["params"]), macs=parse_expr(item["macs"]),
        attrs={k: _attr_in(v) for k, v in item.get("attrs", {}).items()},
        windows=tuple(_window_in(w) for w in item.get("windows", ())),
        inputs=tuple(_edge_in(i) for i in item.get("inputs", ())),
    ) for item in data["layers"])
    return Report(
        model=data["model"],
        input_shape=_shape_in(data["input_shape"]),
        layers=layers,
        output_shape=_shape_in(data["output_shape"]),
        params=int(data["params"]),
        domain=tuple(Condition(parse_expr(c["expr"]), c["layer"], c["kind"], c["why"]) for c in data["domain"]),
        symbols=tuple(size_symbol(s) for s in data["symbols"]),
        sizes={k: int(v) for k, v in data["sizes"].items()},
    )


def from_json(text: str) -> Report:
    """The :class:`Report` that :func:`to_json` wrote.

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> rep = ss.trace(zoo.seed_case2(), "1,3,H,W")
    >>> back = from_json(to_json(rep))
    >>> back.output_shape == rep.output_shape and back.macs == rep.macs and back.domain == rep.domain
    True
    """
    try:
        data = _json.loads(text)
    except ValueError as err:
        raise ShapeError(f"not a symshape report: invalid JSON ({err})") from None
    return from_dict(data)


report_method(staticmethod(from_json), name="from_json")
