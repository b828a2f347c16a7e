"""Checking a traced report against torch, layer by layer and size by size: :func:`check`, its
:class:`Comparison` records and :class:`CheckResult`."""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional
import sympy
import torch
from torch import nn

from ..printing import fmt
from ..report import module_of
from ..symbols import ShapeError
from .observing import FLOPCOUNTER_BLIND_SPOTS, META_DIVERGENCES, ObserveError, input_dtype, observe
from .sampling import default_sizes

__all__ = ["check", "CheckResult", "Comparison"]

@dataclass(frozen=True)
class Comparison:
    """One comparison of :func:`check`: at ``sizes``, what symshape predicted for ``layer`` and
    what torch did.

    ``what`` is ``"shape"`` (the output shape of the module's last call), ``"macs"`` (summed
    over its calls), ``"calls"`` (how often the module ran, compared only when they differ)
    or ``"domain"`` (whether the model runs at all; ``layer`` is then the layer the domain
    blames, or torch's failing module). ``layer`` is ``"(model)"`` for the model's output
    shape and total MACs. ``formula`` is the symbolic prediction; ``status`` is ``"ok"``,
    ``"mismatch"`` or ``"skipped"``; ``note`` says why it was skipped or what went wrong.
    """

    sizes: dict
    layer: str
    kind: str
    what: str
    predicted: object
    actual: object
    formula: str
    status: str
    note: str = ""

    def where(self) -> str:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "the given shape"
        layer = self.layer if self.layer == "(model)" else repr(self.layer)
        return f"at {at}, layer {layer} ({self.kind})"

    def __str__(self) -> str:
        text = (f"{self.where()} {self.what}: predicted {_show(self.predicted)}, torch {_show(self.actual)}; "
                f"formula {self.formula}")
        return text + (f" ({self.note})" if self.note else "")


def _show(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """The result of :func:`check`: every :class:`Comparison` made, and notes on what was not
    compared one by one. ``ok`` is true when no comparison is a mismatch."""

    model: str
    device: str
    sizes: tuple
    comparisons: tuple
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def mismatches(self) -> tuple:
        return tuple(c for c in self.comparisons if c.status == "mismatch")

    @property
    def skipped(self) -> tuple:
        return tuple(c for c in self.comparisons if c.status == "skipped")

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line: sizes, comparisons, mismatches, skipped."""
        n = len(self.comparisons)
        verdict = "ok" if self.ok else "FAILED"
        return (f"check {self.model} against torch ({self.device}): {verdict}: {len(self.sizes)} sizes, "
                f"{n} comparisons, {len(self.mismatches)} mismatches, {len(self.skipped)} skipped")

    def short(self) -> str:
        """The summary, one line per size, then the mismatches, skipped comparisons and notes: what
        the command line prints (``str()`` adds every layer's table)."""
        lines = [self.summary()]
        for sizes in self.sizes:
            at = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(no size symbols)"
            here = [c for c in self.comparisons if c.sizes == sizes]
            domain = next((c for c in here if c.what == "domain"), None)
            bad = sum(c.status == "mismatch" for c in here)
            if domain is not None and domain.note.startswith("runs in torch"):
                lines.append(f"  {at}: {domain.note}; {len(here) - 1} comparisons, "
                             + (f"{bad} MISMATCHES" if bad else "all agree"))
            elif domain is not None:
                lines.append(f"  {at}: {domain.note}" + (" MISMATCH" if domain.status == "mismatch" else ""))
            else:
                lines.append(f"  {at}: runs in torch, as predicted; {len(here)} comparisons, "
                             + (f"{bad} MISMATCHES" if bad else "all agree"))
        return "\n".join(lines + self._tail())

    def _tail(self) -> list:
        lines = []
        if self.mismatches:
            lines += ["", "mismatches:"] + [f"  {c}" for c in self.mismatches]
        if self.skipped:
            lines += ["", "skipped:"] + [f"  {c.where()} {c.what}: {c.note}" for c in self.skipped]
        if self.notes:
            lines += ["", "notes:"] + [f"  {note}" for note in self.notes]
        return lines

    def __str__(self) -> str:
        lines = [self.summary()]
        for sizes in self.sizes:
            at = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(no size symbols)"
            here = [c for c in self.comparisons if c.sizes == sizes]
            domain = [c for c in here if c.what == "domain"]
            rows = {}
            for c in here:
                if c.what in ("shape", "macs"):
                    rows.setdefault((c.layer, c.kind), {})[c.what] = c
            lines.append("")
            lines.append(f"{at}: {domain[0].note}" + (" MISMATCH" if domain and domain[0].status == "mismatch"
                                                          else "") if domain else at)
            if not rows:
                continue
            table = [("layer", "type", "predicted shape", "torch shape", "predicted MACs", "torch MACs", "")]
            for (layer, kind), pair in rows.items():
                shape, macs = pair.get("shape"), pair.get("macs")
                marks = {c.status for c in pair.values()} - {"ok"}
                table.append((layer, kind,
                              _show(shape.predicted) if shape else "", _show(shape.actual) if shape else "",
                              _show(macs.predicted) if macs else "", _show(macs.actual) if macs else "",
                              "MISMATCH" if "mismatch" in marks else "skipped" if marks else "ok"))
            widths = [max(len(r[i]) for r in table) for i in range(7)]
            for r in table:
                lines.append("  " + "  ".join(c.rjust(w) if i in (4, 5) else c.ljust(w)
                                              for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        return "\n".join(lines + self._tail())


def check(model: nn.Module, rep, sizes=None, *, n: int = 6, device: str = "meta",
          dtype: Optional[torch.dtype] = None, progress=None) -> CheckResult:
    """Check ``rep = trace(model, ...)`` against torch: shapes, MACs and the domain, size by size.

    ``sizes`` is a list of ``{symbol name: int}`` dicts giving every symbol of ``rep``
    (default: :func:`default_sizes` ``(rep, n)``, the minimum input, a spread of larger and
    rectangular sizes, and sizes just outside the domain). At each size the model runs once
    in :func:`observe` (on ``device``, meta by default; a CPU copy where meta cannot run),
    and:

    * inside the domain (``rep.violations`` empty) torch must run, and for every layer of
      the report that is a module (matched by qualified name; a module called several times
      is compared by its last output shape and the sum of its MACs, and the number of calls
      must agree) the output shape must equal torch's and the MACs FlopCounterMode's
      (flops / 2), and so must the model's output shape and total MACs. MACs of modules
      FlopCounterMode cannot count (:data:`FLOPCOUNTER_BLIND_SPOTS`) are skipped, with the
      reason. Report layers that are not modules (function nodes of a graph) are compared
      through the totals only; the result's notes say so.
    * outside the domain torch must raise, in the module of the first violated condition
      (or inside it). Where meta is known to accept what CPU rejects
      (:data:`META_DIVERGENCES`), a meta run that succeeds is repeated on CPU.

    Inputs have ``dtype``, by default :func:`~symshape.verify.observing.input_dtype` of the
    model (indices for an embedding, else the parameters' dtype). ``progress``, if given, is
    called as ``progress(done, total)`` after each size. The model is never modified. Raises :class:`~symshape.ShapeError` when a size dict
    does not name exactly the report's symbols.

    >>> import symshape as ss
    >>> from symshape.zoo import seed_case1
    >>> model = seed_case1()
    >>> rep = ss.trace(model, "1,3,H,W")
    >>> res = check(model, rep, sizes=[{"H": 32, "W": 32}, {"H": 28, "W": 28}])
    >>> res.ok
    True
    >>> print(res)
    check Sequential against torch (meta): ok: 2 sizes, 12 comparisons, 0 mismatches, 0 skipped
    <BLANKLINE>
    H=32, W=32: runs in torch, as predicted
      layer    type        predicted shape  torch shape      predicted MACs  torch MACs
      0        Conv2d      (1, 32, 13, 13)  (1, 32, 13, 13)         794,976     794,976  ok
      1        ReLU        (1, 32, 13, 13)  (1, 32, 13, 13)               0           0  ok
      2        Flatten     (1, 5408)        (1, 5408)                     0           0  ok
      3        Linear      (1, 10)          (1, 10)                  54,080      54,080  ok
      (model)  Sequential  (1, 10)          (1, 10)                 849,056     849,056  ok
    <BLANKLINE>
    H=28, W=28: outside the domain, and torch raises there, as predicted: layer '3' (Linear) needs 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5408; torch raised in module '3' (Linear): RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3872 and 5408x10)
    """
    _check_arguments(model, rep, sizes, n, device)
    sizes = default_sizes(rep, n) if sizes is None else list(sizes)
    names = {s.name: s for s in rep.symbols}
    by_path = dict(model.named_modules(remove_duplicate=False))
    first = {}
    for name, module in model.named_modules():
        first.setdefault(id(module), name)
    comparisons, points = [], []
    for given in sizes:
        if not isinstance(given, Mapping):
            raise ShapeError(f"check: each size must be a dict of the report's sizes, such as {{'H': 224}}, "
                             f"got {given!r:.60}")
        point = {(k.name if isinstance(k, sympy.Symbol) else k): v for k, v in dict(given).items()}
        if set(point) != set(names):
            missing, extra = sorted(set(names) - set(point)), sorted(set(point) - set(names))
            raise ShapeError(f"check: sizes {point} must give exactly the report's sizes {', '.join(names) or '(none)'}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(extra)}" if extra else ""))
        point = {s.name: int(v) for s, v in rep.values(point).items()}  # positive integers, or a ShapeError
        shape = [d.subs({names[k]: v for k, v in point.items()}) for d in rep.input_shape]
        if any(int(d) >= 2 ** 63 for d in shape):
            raise ShapeError(f"check: torch cannot make an input of shape {tuple(int(d) for d in shape)} "
                             "(a size beyond 2**63 - 1); check at smaller sizes")
        points.append(point)
        comparisons += _check_at(model, rep.piece(point), point, device, by_path, first, dtype)
        if progress is not None:
            progress(len(points), len(sizes))
    loose = sorted({layer.name for layer in rep.layers if module_of(layer.name) not in by_path})
    notes = ()
    if loose:
        notes = (f"{len(loose)} report layers are not modules of the model ({', '.join(map(repr, loose))}): "
                 "they are compared through the model's output shape and total MACs only",)
    return CheckResult(type(model).__name__, str(device), tuple(points), tuple(comparisons), notes)


def _check_arguments(model, rep, sizes, n, device):
    """ShapeErrors for arguments of the wrong kind, before anything runs."""
    if not isinstance(model, nn.Module):
        raise ShapeError(f"check() needs the torch.nn.Module that was traced, got {type(model).__name__}")
    if not hasattr(rep, "domain") or not hasattr(rep, "symbols"):
        raise ShapeError(f"check() needs the report of trace(model, ...), got {type(rep).__name__}")
    if sizes is not None and (isinstance(sizes, (str, bytes, Mapping)) or not hasattr(sizes, "__iter__")):
        raise ShapeError(f"check: sizes must be a list of dicts such as [{{'H': 224}}], got {sizes!r:.60}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ShapeError(f"check: n must be a positive integer, got {n!r:.60}")
    try:
        torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ShapeError(f"check: device {device!r:.40} is not a torch device ({err})".split("\n")[0]) from None


def _plain_run(model, shape, dtype):
    """An ObserveError if a CPU copy of the model raises on zeros of *shape* when run as a user
    runs it (no counting mode), else None. FlopCounterMode decomposes some ops: there SDPA
    broadcasts a mask of a larger batch, where the CPU kernel raises."""
    work = copy.deepcopy(model).cpu()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            work(torch.zeros(shape, dtype=dtype or input_dtype(model)))
    except Exception as exc:  # torch rejects the size: the domain comparison records it
        kind = type(model).__name__
        return ObserveError(f"torch raised in module '' ({kind}) with input shapes ({shape},) on cpu: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "", kind,
                            (shape,), "cpu")
    return None


def _ints(value):
    """A predicted shape as ints (nested for several outputs), or None where it is not numeric."""
    if isinstance(value, tuple):
        items = [_ints(v) for v in value]
        return tuple(items)
    if value is None:
        return None
    value = sympy.sympify(value, strict=True)
    return int(value) if value.is_Integer else value


def _failure_text(err):
    """``torch raised in module 'name' (Kind): Error: message``, from an :class:`ObserveError`."""
    return f"torch raised in module {err.layer!r} ({err.kind}): {str(err).split(f' on {err.device}: ', 1)[-1]}"


def _check_at(model, rep, point, device, by_path, first, dtype=None):
    values = {s: sympy.Integer(point[s.name]) for s in rep.symbols}
    shape = tuple(int(d.subs(values)) for d in rep.input_shape)
    violated = rep.violations(**point)
    obs, err = None, None
    try:
        obs = observe(model, shape, device=device, dtype=dtype)
    except ObserveError as e:
        err = e

    def domain(status, layer, kind, predicted, actual, formula, note):
        return Comparison(point, layer, kind, "domain", predicted, actual, formula, status, note)

    if violated:
        cond = violated[0]
        blamed = by_path.get(cond.layer)
        if err is None and torch.device(device).type == "meta" and (
                blamed is None or isinstance(blamed, tuple(META_DIVERGENCES))):
            # a known divergence, or a function call (F.interpolate to size 0 runs on meta, raises on CPU)
            try:
                observe(model, shape, device="cpu", dtype=dtype)
            except ObserveError as e:
                err = e
            if err is None and blamed is None:
                err = _plain_run(model, shape, dtype)
        needs = f"layer {cond.layer!r} ({cond.kind}) needs {fmt(cond.expr)}"
        if err is None:
            empty = next((o for o in obs.values() if _has_zero(o.out_shape)), None)
            if empty is not None:
                return [domain("ok", cond.layer, cond.kind, "raises", "empty", fmt(cond.expr),
                               f"outside the domain ({needs}); torch runs, but module {empty.layer!r} ({empty.kind}) "
                               f"outputs the empty tensor {empty.out_shape}, which the domain excludes")]
            if obs.empty is not None:
                return [domain("ok", cond.layer, cond.kind, "raises", "empty", fmt(cond.expr),
                               f"outside the domain ({needs}); torch runs, but the call {obs.empty}, "
                               "which the domain excludes")]
            return [domain("mismatch", cond.layer, cond.kind, "raises", "runs", fmt(cond.expr),
                           f"outside the domain ({needs}: {cond.reason}), but torch runs there")]
        order = {}
        for i, layer in enumerate(rep.layers):
            module = by_path.get(module_of(layer.name))
            if module is not None:
                order.setdefault(first[id(module)], i)
        blamed_at = order.get(first[id(blamed)]) if blamed is not None else None
        failed_at = next((i for name, i in order.items()
                          if err.layer == name or err.layer.startswith(name + ".")), None)
        text = f"{needs}; {_failure_text(err)}"
        if blamed_at is None or failed_at is None or failed_at == blamed_at:
            return [domain("ok", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                           f"outside the domain, and torch raises there, as predicted: {text}")]
        if failed_at > blamed_at:
            return [domain("ok", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                           f"outside the domain, and torch raises there, in a later layer (torch lets "
                           f"{cond.layer!r} output an empty tensor, which the domain excludes): {text}")]
        return [domain("mismatch", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                       f"torch raises in an earlier layer than the domain predicts: {text}")]
    if err is not None:
        return [domain("mismatch", err.layer, err.kind, "runs", "raises",
                       ", ".join(fmt(c.expr) for c in rep.domain) or "no conditions",
                       f"inside the domain, but {_failure_text(err)}")]

    at = rep.at(point)
    where = f" (on {obs.device}: {obs.fallback_reason})" if obs.fallback_reason else ""
    out = [domain("ok", "", type(model).__name__, "runs", "runs", "", f"runs in torch, as predicted{where}")]
    out += _per_call(point, obs, rep.layers, at.layers, by_path, first)
    walked = [call.name for call in rep.modules if call.name]  # the root is the "(model)" rows below
    out += _per_call(point, obs, [rep.layer(n) for n in walked], [at.layer(n) for n in walked], by_path, first)
    root = obs[""]
    out.append(_compare(point, "(model)", type(model).__name__, "shape", _ints(at.output_shape), root.out_shape,
                        _fmt_shapes(rep.output_shape)))
    out.append(_compare(point, "(model)", type(model).__name__, "macs", _ints(at.macs), root.macs,
                        fmt(rep.macs), root.macs_caveat))
    return out


def _per_call(point, obs, sym_records, num_records, by_path, first) -> list:
    """Each call of each module among the records (layers, or module calls) against torch's own
    call of it: the k-th record of a module (``name``, ``name#2``, ...) against its k-th call."""
    out, groups = [], {}
    for sym, num in zip(sym_records, num_records):
        module = by_path.get(module_of(sym.name))
        if module is not None:
            groups.setdefault(id(module), (module, []))[1].append((sym, num))
    for module, pairs in groups.values():
        seen = obs.get(first[id(module)])
        calls = seen.calls if seen is not None else 0
        if calls != len(pairs):
            sym = pairs[-1][0]
            out.append(Comparison(point, sym.name, sym.kind, "calls", len(pairs), calls, "", "mismatch",
                                  f"the report applies {first[id(module)]!r} {len(pairs)} times, torch ran it "
                                  f"{calls} times"))
            if seen is None:
                continue
        caveat = _blind(module) or seen.macs_caveat
        for k, (sym, num) in enumerate(pairs[:calls]):
            out.append(_compare(point, sym.name, sym.kind, "shape", _ints(num.out_shape), seen.call_shapes[k],
                                _fmt_shapes(sym.out_shape)))
            out.append(_compare(point, sym.name, sym.kind, "macs", _ints(num.macs), seen.call_macs[k], fmt(sym.macs),
                                caveat))
    return out


def _has_zero(shape):
    if isinstance(shape, tuple):
        return any(_has_zero(d) for d in shape)
    return shape == 0


def _fmt_shapes(shape):
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) or s is None for s in shape):
        return "(" + ", ".join("None" if s is None else _fmt_shapes(s) for s in shape) + ")"
    return str(shape)


def _blind(module):
    for cls in type(module).__mro__:
        if cls in FLOPCOUNTER_BLIND_SPOTS:
            return f"FlopCounterMode cannot count {type(module).__name__}: {FLOPCOUNTER_BLIND_SPOTS[cls]}"
    return None


def _compare(point, layer, kind, what, predicted, actual, formula, caveat=None):
    if caveat:
        return Comparison(point, layer, kind, what, predicted, actual, formula, "skipped", caveat)
    status = "ok" if predicted == actual else "mismatch"
    return Comparison(point, layer, kind, what, predicted, actual, formula, status)
