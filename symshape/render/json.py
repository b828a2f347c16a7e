"""JSON for programs: a stable, documented schema whose expressions parse back exactly.

Schema ``symshape.report/1`` (every expression is a string that :func:`symshape.symbols.parse_expr`
reads back to an equal sympy expression; a shape is a list of expressions; an op with several
outputs has a list of shapes, ``null`` for one that is not a tensor; a model that returns a dict has an
object of them, in the dict's order)::

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
      "domain": [{"expr": "H >= 7", "layer": "0", "kind": "Conv2d", "reason": "..."}, ...]
    }

Expressions print as :func:`symshape.fmt` does (``floor((H - 7)/2) + 1``), except that equations
are ``a == b``, congruences ``Mod(H, 32) == 0`` and torch's double-rounded scales
``ScaledFloor(H, 0.29)``, so that every string is also valid input.
"""
from __future__ import annotations

import json as _json

import sympy

from ..report import Condition, Layer, ModuleCall, Outputs, Report, Shape, report_method
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
    if getattr(shape, "names", None) is not None:  # a dict of outputs
        return {k: None if s is None else _shape_out(s) for k, s in shape.items()}
    if _is_multi(shape):
        return [None if s is None else _shape_out(s) for s in shape]
    return [expr_text(d) for d in shape]


def _fail(path: str, what: str):
    if len(path) > 100:
        path = f"{path[:60]}... ({len(path):,} characters)"
    raise ShapeError(f"not a symshape report: {path} {what}")


def _kind(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _get(obj: dict, key: str, types, path: str, what: str, default=KeyError):
    """``obj[key]`` checked against *types* (``what`` names them in the message)."""
    at = f"{path}.{key}" if path else key
    if key not in obj:
        if default is not KeyError:
            return default
        _fail(at, "is missing")
    value = obj[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        _fail(at, f"must be {what}, got {_kind(value)}")
    return value


def _tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        _fail(path, f"must be an object, got {_kind(value)}")
    return value


def _list(value, path: str) -> list:
    if not isinstance(value, list):
        _fail(path, f"must be a list, got {_kind(value)}")
    return value


def _expr(text, path: str):
    if not isinstance(text, str):
        _fail(path, f"must be an expression as a string, got {_kind(text)}")
    try:
        return parse_expr(text)
    except ShapeError as err:
        raise ShapeError(f"not a symshape report: {path}: {err}") from None


def _shape_in(data, path: str, depth: int = 0):
    if isinstance(data, dict):  # a dict of outputs
        if depth >= 8:
            _fail(path, "nests outputs more than 8 deep")
        return Outputs({k: None if s is None else _shape_in(s, f"{path}.{k}", depth + 1) for k, s in data.items()})
    data = _list(data, path)
    if data and all(isinstance(s, list) or s is None for s in data):
        if depth >= 8:
            _fail(path, "nests outputs more than 8 deep")
        return Outputs(None if s is None else _shape_in(s, f"{path}[{i}]", depth + 1) for i, s in enumerate(data))
    return Shape(_expr(d, f"{path}[{i}]") for i, d in enumerate(data))


def _attr_out(value):
    return list(value) if isinstance(value, tuple) else value


def _attr_in(value):
    return tuple(value) if isinstance(value, list) else value


def _edge_in(value):
    if value is None or isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return value
    got = repr(value) if len(repr(value)) <= 60 else _kind(value)
    raise ShapeError(f"not a symshape report: a layer's inputs are layer indices, -1 or null, got {got}")


def _window_out(w: Window):
    if w is None:
        return None
    data = w.to_data()
    for key in ("padding", "padding_right"):  # TF-style 'same' padding is an expression of the size
        if key in data and not isinstance(data[key], int):
            data[key] = expr_text(data[key])
    return data


_WINDOW_KEYS = {"kernel", "stride", "padding", "dilation", "ceil_mode", "padding_right", "transposed", "output_padding"}


def _window_in(data, path: str) -> Window:
    if data is None:  # a dim without a window
        return None
    data = dict(_object(data, path))
    unknown = sorted(set(data) - _WINDOW_KEYS)
    if unknown or "kernel" not in data:
        _fail(path, f"must have 'kernel' and take only {sorted(_WINDOW_KEYS)}, got " +
              (f"{_kind(unknown[0])[4:]}" if unknown else "no kernel"))
    for key in ("kernel", "stride", "dilation", "output_padding"):
        if key in data:
            _get(data, key, int, path, "an integer")
    for key in ("ceil_mode", "transposed"):
        if key in data:
            _get(data, key, bool, path, "true or false")
    for key in ("padding", "padding_right"):
        if isinstance(data.get(key), str):
            data[key] = _expr(data[key], f"{path}.{key}")
        elif key in data and not (data[key] is None and key == "padding_right"):
            _get(data, key, int, path, "an integer or an expression")
    try:
        return Window.from_data(data)
    except ShapeError as err:
        raise ShapeError(f"not a symshape report: {path}: {err}") from None


def _field_out(fields):
    """A layer's receptive field (:func:`symshape.receptive.receptive_fields`) as exact text."""
    if fields is None:
        return {}
    return {"receptive_field": {key: [expr_text(f[n]) for f in fields]
                                for n, key in enumerate(("size", "stride", "padding"))}}


def to_dict(report: Report) -> dict:
    """The report as plain data in the ``symshape.report/1`` schema (a layer's ``receptive_field``
    is derived data: size, stride and padding per spatial dim it keeps; so is its ``memory``: the
    float32 bytes its output allocates in inference and that it saves for backward in training,
    absent when a layer has no memory rule; read back, both are recomputed)."""
    from ..memory import layer_bytes

    fields = receptive_fields(report)
    mem = layer_bytes(report) or [None] * len(report.layers)
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
        **({"activations_note": report.partial_note} if report.partial_note else {}),
        "convention": CONVENTION,
        "layers": [{
            "name": layer.name, "kind": layer.kind,
            "in_shapes": [_shape_out(s) if isinstance(s, tuple) else None for s in layer.in_shapes],
            "out_shape": _shape_out(layer.out_shape), "params": layer.params, "macs": expr_text(layer.macs),
            "attrs": {k: _attr_out(v) for k, v in layer.attrs.items()},
            **({"windows": [_window_out(w) for w in layer.windows]} if layer.windows else {}),
            **({"inputs": list(layer.inputs)} if layer.inputs else {}),
            **({"only": [[expr_text(r) for r in sympy.And.make_args(term)] for term in sympy.Or.make_args(layer.only)]}
               if layer.only is not None else {}),
            **_field_out(field),
            **({"memory": {"dtype": "float32", "output_bytes": expr_text(m[0]), "saved_bytes": expr_text(m[1])}}
               if m is not None else {}),
        } for layer, field, m in zip(report.layers, fields, mem)],
        "domain": [_condition_out(c) for c in report.domain],
        "modules": [{
            "name": call.name, "kind": call.kind,
            "in_shapes": [_shape_out(s) if isinstance(s, tuple) else None for s in call.in_shapes],
            "out_shape": _shape_out(call.out_shape), "params": call.params, "layers": [call.first, call.stop],
        } for call in report.modules],
        **({"itemsize": report.itemsize} if report.itemsize != 4 else {}),
        **({"frozen": report.frozen} if report.frozen else {}),
        **({"branch": [_condition_out(c) for c in report.branch]} if report.branch else {}),
        **({"pieces": [to_dict(p) for p in report.pieces]} if report.pieces else {}),
    }


def _condition_out(c) -> dict:
    return {"expr": expr_text(c.expr), "layer": c.layer, "kind": c.kind, "reason": c.reason}


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


def _layer_in(item, path: str) -> Layer:
    item = _object(item, path)
    attrs = _get(item, "attrs", dict, path, "an object", default={})
    return Layer(
        name=_get(item, "name", str, path, "a string"), kind=_get(item, "kind", str, path, "a string"),
        in_shapes=tuple(None if s is None else _shape_in(s, f"{path}.in_shapes[{i}]")
                        for i, s in enumerate(_get(item, "in_shapes", list, path, "a list"))),
        out_shape=_shape_in(_get(item, "out_shape", (list, dict), path, "a list or an object"), f"{path}.out_shape"),
        params=_get(item, "params", int, path, "an integer"),
        macs=_expr(_get(item, "macs", str, path, "an expression as a string"), f"{path}.macs"),
        attrs={k: _attr_in(v) for k, v in attrs.items()},
        windows=tuple(_window_in(w, f"{path}.windows[{i}]")
                      for i, w in enumerate(_get(item, "windows", list, path, "a list", default=[]))),
        inputs=tuple(_edge_in(i) for i in _get(item, "inputs", list, path, "a list", default=[])),
        only=_only_in(item, path),
    )


def _only_in(item, path: str):
    """A layer's ``only``: a list of alternatives, each a list of relations that all hold (None: absent)."""
    terms = _get(item, "only", list, path, "a list of lists of relations", default=None)
    if terms is None:
        return None
    alternatives = []
    for i, term in enumerate(terms):
        if not isinstance(term, list) or not all(isinstance(r, str) for r in term):
            raise ShapeError(f"{path}.only[{i}] must be a list of relations as strings")
        alternatives.append(sympy.And(*(_expr(r, f"{path}.only[{i}][{j}]") for j, r in enumerate(term))))
    return sympy.Or(*alternatives)


def _module_in(item, path: str, count: int) -> ModuleCall:
    item = _object(item, path)
    span = _get(item, "layers", list, path, "a list [first, stop] of layer indices")
    if len(span) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in span) \
            or not 0 <= span[0] <= span[1] <= count:
        _fail(f"{path}.layers", f"must be [first, stop] with 0 <= first <= stop <= {count}, got {_kind(span)}")
    return ModuleCall(
        name=_get(item, "name", str, path, "a string"), kind=_get(item, "kind", str, path, "a string"),
        in_shapes=tuple(None if s is None else _shape_in(s, f"{path}.in_shapes[{i}]")
                        for i, s in enumerate(_get(item, "in_shapes", list, path, "a list"))),
        out_shape=_shape_in(_get(item, "out_shape", (list, dict), path, "a list or an object"), f"{path}.out_shape"),
        params=_get(item, "params", int, path, "an integer"), first=span[0], stop=span[1])


def _condition_in(item, path: str) -> Condition:
    item = _object(item, path)
    return Condition(_expr(_get(item, "expr", str, path, "an expression as a string"), f"{path}.expr"),
                     _get(item, "layer", str, path, "a string"), _get(item, "kind", str, path, "a string"),
                     _get(item, "reason" if "reason" in item or "why" not in item else "why", str, path,
                          "a string"))  # "why": reports written by symshape 0.1


def from_dict(data: dict) -> Report:
    """A :class:`Report` from ``symshape.report/1`` data, every expression parsed safely; a missing
    key or a value of the wrong type is a :class:`ShapeError` that names it.

    >>> from_dict({"schema": SCHEMA, "model": "Net", "input_shape": ["1", "H"]})
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: not a symshape report: layers is missing
    """
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        got = repr(got) if len(repr(got)) <= 60 else _kind(got)
        raise ShapeError(f"not a symshape report: expected schema {SCHEMA!r}, got {got}")
    model = _get(data, "model", str, "", "a string")
    input_shape = _shape_in(_get(data, "input_shape", list, "", "a list"), "input_shape")
    layers = tuple(_layer_in(item, f"layers[{i}]") for i, item in enumerate(_get(data, "layers", list, "", "a list")))
    sizes = _get(data, "sizes", dict, "", "an object")
    for name, value in sizes.items():
        _get(sizes, name, int, "sizes", "an integer")
    symbols = []
    for i, name in enumerate(_get(data, "symbols", list, "", "a list")):
        if not isinstance(name, str):
            _fail(f"symbols[{i}]", f"must be a size name, got {_kind(name)}")
        try:
            symbols.append(size_symbol(name))
        except ShapeError as err:
            raise ShapeError(f"not a symshape report: symbols[{i}]: {err}") from None
    return Report(
        model=model,
        input_shape=input_shape,
        layers=layers,
        output_shape=_shape_in(_get(data, "output_shape", (list, dict), "", "a list or an object"), "output_shape"),
        params=_get(data, "params", int, "", "an integer"),
        domain=tuple(_condition_in(c, f"domain[{i}]") for i, c in enumerate(_get(data, "domain", list, "", "a list"))),
        symbols=tuple(symbols),
        sizes=dict(sizes),
        modules=tuple(_module_in(item, f"modules[{i}]", len(layers))
                      for i, item in enumerate(_get(data, "modules", list, "", "a list", default=[]))),
        itemsize=_get(data, "itemsize", int, "", "an integer", default=4),
        frozen=_get(data, "frozen", int, "", "an integer", default=0),
        branch=tuple(_condition_in(c, f"branch[{i}]")
                     for i, c in enumerate(_get(data, "branch", list, "", "a list", default=[]))),
        pieces=tuple(from_dict(p) for p in _get(data, "pieces", list, "", "a list", default=[])),
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
    if not isinstance(text, (str, bytes, bytearray)):
        raise ShapeError(f"not a symshape report: from_json() needs JSON text, got {type(text).__name__}")
    try:
        data = _json.loads(text)
    except ValueError as err:
        raise ShapeError(f"not a symshape report: invalid JSON ({err})") from None
    except RecursionError:
        raise ShapeError("not a symshape report: the JSON nests too deeply") from None
    return from_dict(data)


report_method(staticmethod(from_json), name="from_json")
