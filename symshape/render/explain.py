"""The step-by-step derivation a teacher would write: each layer's formula with its
hyper-parameters, the numbers substituted, where a floor drops a fraction and what that means,
and how the MACs multiply up.

Everything comes from the report (its symbolic and numeric shapes and each layer's ``attrs``);
every number the explanation derives is compared with the report's own, and a layer whose
formula would not reproduce it is explained by its shapes alone.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Mapping, Optional


from ..symbols import ShapeError
from ..floors import scaled_floor
from ..printing import fmt
from ..receptive import window_steps
from ..report import report_method
from .text import CONVENTION

__all__ = ["explain"]

_POSITIONAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_UNITS = {"H": "row", "W": "column"}


def _n(value) -> str:
    """An integer with thousands separators."""
    return f"{int(value):,}"


def _dot(values) -> str:
    return "·".join(str(int(v)) for v in values)


def _decimal(q: Fraction) -> str:
    """``12.5`` for 25/2; ``9.33…`` for 28/3."""
    if q.denominator == 1:
        return str(q.numerator)
    den = q.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:
        text = f"{float(q):.10f}".rstrip("0")
        return text
    return f"{float(q):.2f}…"


def _tuple(value, nd: int) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value) * nd if len(value) == 1 and nd > 1 else tuple(value)
    return (value,) * nd


def _shape_text(shape) -> str:
    if getattr(shape, "names", None) is not None:  # a dict of outputs
        return ", ".join(f"{k}: {'None' if s is None else _shape_text(s)}" for k, s in shape.items())
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) or s is None for s in shape):
        return ", ".join("None" if s is None else _shape_text(s) for s in shape)
    return "(" + ", ".join(fmt(d) for d in shape) + ")"


def _is_shape(shape) -> bool:
    return isinstance(shape, tuple) and not (shape and all(isinstance(s, tuple) or s is None for s in shape))


def _spatial_names(sym_in, nd: int) -> list:
    names = list(_POSITIONAL.get(nd, tuple(f"dim{i}" for i in range(nd))))
    for i, dim in enumerate(sym_in[len(sym_in) - nd:]):
        free = sorted(dim.free_symbols, key=lambda s: s.name)
        if len(free) == 1:
            names[i] = free[0].name
    return names


def _unit(name: str, nd: int, count: int) -> str:
    unit = _UNITS.get(name, "position") if nd == 2 else "position"
    return unit if count == 1 else unit + "s"


def _offset(value: int) -> str:
    return "" if value == 0 else f" + {value}" if value > 0 else f" - {-value}"


def _window_dim(name, nd, size, k, s, p, d, ceil_mode) -> tuple:
    """``(out, lines)`` for one dim of a conv or pool window: floor((L + 2p - e)/s) + 1."""
    e = d * (k - 1) + 1
    num = size + 2 * p - e
    lines = [f"{name}: floor(({size} + 2·{p} - {d}·({k} - 1) - 1)/{s}) + 1 = floor({num}/{s}) + 1"]
    q = Fraction(num, s)
    if not ceil_mode:
        out = num // s + 1
        lines[0] += f" = {out}"
        if s == 1:
            lines[0] = f"{name}: {size} + 2·{p} - {d}·({k} - 1) - 1 + 1 = {out}"
        if q.denominator > 1:
            left = num % s
            dropped = max(0, left - p)
            which = f"{size}" if dropped == 1 else f"{size - dropped + 1} to {size}"
            what = (f"the last input {_unit(name, nd, dropped)} ({which} of {size}) "
                    f"{'is' if dropped == 1 else 'are'} never covered by a window" if dropped else
                    f"only padding is left uncovered: every input {_unit(name, nd, 1)} is used")
            lines.append(f"   ({size}{_offset(2 * p - e)})/{s} + 1 = {_decimal(q + 1)} → {out}: "
                         f"the floor drops {_decimal(q - math.floor(q))}, so {what}")
        return out, lines
    up = -(-num // s) + 1
    last_start = (size + p - 1) // s + 1
    out = min(up, last_start)
    lines[0] = (f"{name}: ceil mode, min(ceil(({size} + 2·{p} - {d}·({k} - 1) - 1)/{s}) + 1, "
                f"floor(({size} + {p} - 1)/{s}) + 1) = min({up}, {last_start}) = {out}")
    if q.denominator > 1:
        lines.append(f"   ({size}{_offset(2 * p - e)})/{s} + 1 = {_decimal(q + 1)} → {up}: ceil mode keeps a last, "
                     f"partial window")
    if up > last_start:
        lines.append(f"   the window {up} would start in the right padding, so torch drops it: {out}")
    return out, lines


def _transposed_dim(name, size, k, s, p, d, op) -> tuple:
    out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
    return out, [f"{name}: ({size} - 1)·{s} - 2·{p} + {d}·({k} - 1) + {op} + 1 = {out}"]


def _window_layer(layer, sym, num) -> Optional[tuple]:
    """``(header details, lines)`` for convs, transposed convs, pools and upsampling, or None."""
    a = layer.attrs
    x, out = num.in_shape, num.out_shape
    if not (_is_shape(x) and _is_shape(out)) or not all(d.is_Integer for d in (*x, *out)):
        return None
    if "kernel_size" in a and "stride" in a:
        k0 = a["kernel_size"]
        m = re.search(r"([123])d\Z", layer.kind)
        nd = len(k0) if isinstance(k0, tuple) else int(m.group(1)) if m else len(x) - 2
        if nd < 1 or len(x) < nd + 1:
            return None
        ks, ss_ = _tuple(k0, nd), _tuple(a["stride"] if a["stride"] is not None else k0, nd)
        pad = a.get("padding", 0)
        ds = _tuple(a.get("dilation", 1), nd)
        names = _spatial_names(sym.in_shape, nd)
        sizes = [int(v) for v in x[len(x) - nd:]]
        outs, lines = [], []
        transposed = bool(a.get("transposed"))
        if transposed:
            ops = _tuple(a.get("output_padding", 0), nd)
            ps = _tuple(pad, nd)
            lines.append("out = (in - 1)·stride - 2·padding + dilation·(kernel - 1) + output_padding + 1")
            for name, size, k, s, p, d, op in zip(names, sizes, ks, ss_, ps, ds, ops):
                o, text = _transposed_dim(name, size, k, s, p, d, op)
                outs.append(o)
                lines += text
        elif pad == "same":
            lines.append("padding='same' keeps every size")
            outs = sizes
        else:
            ps = (0,) * nd if pad == "valid" else _tuple(pad, nd)
            ceil_mode = bool(a.get("ceil_mode", False))
            lines.append("out = floor((in + 2·padding - dilation·(kernel - 1) - 1)/stride) + 1"
                         + (" (ceil mode: the last window may be partial)" if ceil_mode else ""))
            for name, size, k, s, p, d in zip(names, sizes, ks, ss_, ps, ds):
                o, text = _window_dim(name, nd, size, k, s, p, d, ceil_mode)
                outs.append(o)
                lines += text
        if outs != [int(v) for v in out[len(out) - nd:]]:
            return None
        details = [f"kernel {'×'.join(map(str, ks))}", f"stride {'×'.join(map(str, ss_))}"]
        if not isinstance(pad, str):
            details.append(f"padding {'×'.join(map(str, _tuple(pad, nd)))}")
        else:
            details.append(f"padding '{pad}'")
        if any(d != 1 for d in ds):
            details.append(f"dilation {'×'.join(map(str, ds))}")
        if a.get("groups", 1) != 1:
            details.append(f"groups {a['groups']}")
        return details, lines
    if a.get("scale_factor") is not None and len(x) >= 3:
        nd = len(x) - 2
        scales = _tuple(a["scale_factor"], nd)
        names = _spatial_names(sym.in_shape, nd)
        lines = ["out = floor(in · scale_factor), multiplied in double precision as torch does"]
        outs = []
        for name, size, sc in zip(names, x[2:], scales):
            o = int(scaled_floor(int(size), sc))  # torch's double-rounded product
            outs.append(o)
            lines.append(f"{name}: floor({int(size)}·{sc!r}) = {o}")
        if outs != [int(v) for v in out[2:]]:
            return None
        return [f"scale {'×'.join(repr(s) for s in scales)}"], lines
    return None


def _macs_lines(layer, num) -> list:
    """How the MACs multiply up, for convs and Linear; the report's number otherwise."""
    macs = num.macs
    if macs == 0:
        return []
    if not isinstance(macs, int):
        return [f"MACs = {fmt(macs)}"]
    a, x, out = layer.attrs, num.in_shape, num.out_shape
    total = int(macs)
    if "kernel_size" in a and "in_channels" in a and _is_shape(x) and _is_shape(out):
        ks = a["kernel_size"]
        nd = len(ks)
        g = a.get("groups", 1)
        lead = [int(v) for v in x[:len(x) - nd - 1]]
        batch = math.prod(lead)
        if a.get("transposed"):
            positions = [int(v) for v in x[len(x) - nd:]]
            weights = [a["in_channels"], a["out_channels"] // g, *ks]
            head = "MACs = in positions · Cin·(Cout/groups)·kernel (transposed: each input value is scattered)"
        else:
            positions = [int(v) for v in out[len(out) - nd:]]
            weights = [a["out_channels"], a["in_channels"] // g, *ks]
            head = "MACs = out positions · Cout·(Cin/groups)·kernel"
        per_item = math.prod(positions) * math.prod(weights)
        if per_item * batch != total:
            return [f"MACs = {_n(total)}"]
        lines = [head,
                 f"     = {_dot(positions)} · {_dot(weights)} = {_n(math.prod(positions))} · {_n(math.prod(weights))} "
                 f"= {_n(per_item)}" + (" per image" if lead else "")]
        if batch != 1:
            lines.append(f"     × batch {batch} = {_n(total)}")
        if not a.get("transposed"):
            stride = _tuple(a.get("stride", 1), nd)
            if any(s > 1 for s in stride):
                ins = [int(v) for v in x[len(x) - nd:]]
                lines.append(f"     the stride skips positions: the kernel is applied at the {_dot(positions)} output "
                             f"positions, not at all {_dot(ins)} input positions")
        return lines
    if "in_features" in a and "out_features" in a and _is_shape(x):
        lead = [int(v) for v in x[:-1]]
        factors = [*lead, a["in_features"], a["out_features"]]
        if math.prod(factors) == total:
            return ["MACs = leading dims · in_features · out_features", f"     = {_dot(factors)} = {_n(total)}"]
    return [f"MACs = {_n(total)}"]


def _generic_lines(layer, sym, num) -> list:
    a = layer.attrs
    if _is_shape(num.out_shape) and _is_shape(num.in_shape):
        x, out = num.in_shape, num.out_shape
        if "start_dim" in a and "end_dim" in a and len(out) < len(x):
            start = a["start_dim"] % len(x)
            end = a["end_dim"] % len(x)
            block = x[start:end + 1]
            return [f"flattens dims {start} to {end}: {_dot(block)} = {_n(math.prod(int(v) for v in block))}"
                    if all(v.is_Integer for v in block) else f"flattens dims {start} to {end}"]
        if "in_features" in a and x:
            return [f"acts on the last dim, which must be in_features = {a['in_features']}: it is {fmt(x[-1])}"]
        if "output_size" in a and len(out) == len(x):
            return [f"output_size {a['output_size']} fixes the pooled sizes"]
    return []


def _header(layer, details=()) -> str:
    name = layer.name or "<root>"
    return f"layer {name!r} ({', '.join([layer.kind, *details])})"


@report_method
def explain(report, sizes: Optional[Mapping] = None, **more) -> str:
    """The derivation of every layer's output shape (and MACs) at the given sizes; under each conv
    and pool, the recurrences of its receptive field (size r, effective stride j, padding P).

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> text = explain(ss.trace(zoo.fastbook_cnn(), "64,1,H,W"), H=28, W=28)
    >>> lines = text.splitlines()
    >>> start = lines.index("layer '1.0' (Conv2d, kernel 3×3, stride 2×2, padding 1×1)")
    >>> print("\\n".join(lines[start:start + 11]))
    layer '1.0' (Conv2d, kernel 3×3, stride 2×2, padding 1×1)
      out = floor((in + 2·padding - dilation·(kernel - 1) - 1)/stride) + 1
      H: floor((14 + 2·1 - 1·(3 - 1) - 1)/2) + 1 = floor(13/2) + 1 = 7
         (14 - 1)/2 + 1 = 7.5 → 7: the floor drops 0.5, so only padding is left uncovered: every input row is used
      W: floor((14 + 2·1 - 1·(3 - 1) - 1)/2) + 1 = floor(13/2) + 1 = 7
         (14 - 1)/2 + 1 = 7.5 → 7: the floor drops 0.5, so only padding is left uncovered: every input column is used
      MACs = out positions · Cout·(Cin/groups)·kernel
           = 7·7 · 8·4·3·3 = 49 · 288 = 14,112 per image
           × batch 64 = 903,168
           the stride skips positions: the kernel is applied at the 7·7 output positions, not at all 14·14 input positions
      → (64, 8, 7, 7); in terms of the input: (64, 8, floor((H - 1)/4) + 1, floor((W - 1)/4) + 1)
    """
    given = {**(sizes or {}), **more}
    missing = [s.name for s in report.symbols if s.name not in given]
    if missing:
        example = ", ".join(f"{name}=32" for name in missing)
        raise ShapeError(f"explain() needs a value for every input size; missing {', '.join(missing)}: "
                         f"call e.g. report.explain({example})")
    values = report.values(given)
    failed = {}
    for cond in report.violations(**given):
        failed.setdefault(cond.layer, []).append(cond)
    num = report.at(given) if given and not failed else report
    at = ", ".join(f"{k}={v}" for k, v in given.items())
    out = [f"{report.model} on input {_shape_text(report.input_shape)}"
           + (f" at {at}: {_shape_text(report.input_shape.subs(values))}" if at else "")]
    steps = window_steps(report, {s.name: int(v) for s, v in values.items()})
    for index, sym_layer in enumerate(report.layers):
        num_layer = sym_layer.subs(values)
        window = _window_layer(sym_layer, sym_layer, num_layer)
        broken = failed.get(sym_layer.name, [])
        if (window is None and not broken and num_layer.macs == 0 and num_layer.out_shape == num_layer.in_shape
                and sym_layer.out_shape == sym_layer.in_shape):
            out.append(f"{_header(sym_layer)}: keeps the shape {_shape_text(num_layer.out_shape)}")
            continue
        details, lines = window if window is not None else ((), _generic_lines(sym_layer, sym_layer, num_layer))
        out.append(_header(sym_layer, details))
        if broken:
            out += [f"  {line}" for line in lines]
            out += [f"  ✗ needs {fmt(c.expr)} ({c.reason}), which fails at {at}" for c in broken]
            out.append(f"the model does not run at {at}")
            return "\n".join(out)
        out += [f"  {line}" for line in lines + _macs_lines(sym_layer, num_layer)]
        result = f"  → {_shape_text(num_layer.out_shape)}"
        if sym_layer.out_shape != num_layer.out_shape:
            result += f"; in terms of the input: {_shape_text(sym_layer.out_shape)}"
        out.append(result)
        rows = steps.get(index, [])
        if rows and len({text for _, text in rows}) == 1:
            out.append(f"  receptive field ({', '.join(d for d, _ in rows)}): {rows[0][1]}")
        else:
            out += [f"  receptive field {d}: {text}" for d, text in rows]
    out.append(f"output {_shape_text(num.output_shape)}, {num.params:,} parameters, "
               f"{_n(num.macs) if isinstance(num.macs, int) else fmt(num.macs)} MACs")
    out.append(CONVENTION)
    return "\n".join(out)
