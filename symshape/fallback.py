"""The fallback for ops with no shape rule: torch's own meta kernels, run on symbolic sizes.

When a front end meets a torch function or ``Tensor`` method that no rule covers, :func:`meta_rule`
gives a rule for it that runs the op itself on FakeTensors whose sizes are torch symbols
(``torch.fx.experimental.symbolic_shapes.ShapeEnv`` with ``FakeTensorMode``):

* each size symbol of the call's sizes (a tensor's dims, size arguments) becomes one torch symbol
  with the typical size (224) as its hint, and each size is built from them (``floor(n/m)`` as
  ``n // m``, ``Min`` as ``sym_min``), so torch sees how the sizes relate and takes the path it
  takes at a typical size; a size that cannot be built so is one torch symbol of its own;
* the output sizes torch computes (``FloorDiv``, ``CeilDiv``, ``Mod``, ``ModularIndexing``,
  ``Max``, ``Min``, ...) are translated into symshape's floor algebra; an expression that cannot be
  translated exactly is a ShapeError, never a guess;
* the guards torch records while its kernel runs (a size compared, a size specialized to a
  constant) become domain conditions, with the reason "torch's meta kernel for aten.xxx assumes
  ...": the formula is only claimed where torch's kernel takes the same path. Guards that only
  choose strides or a memory format (which never change a shape) are not conditions, and a guard
  on one size is dropped where torch's kernel, run on its other side, shows the same formula
  there (see :func:`_holds_where_excluded`);
* MACs are the formulas of ``torch.utils.flop_counter`` (flops / 2) for the aten ops the kernel
  dispatched, evaluated on the same symbols; 0 for ops it does not count;
* an op whose output size depends on the values in a tensor (``nonzero``, ``unique``,
  ``masked_select``) is refused, with the layer named by the tracer.

A plain Python helper of sizes that torch.fx keeps as one call (a position grid) runs the same way.
Results are cached by the call's op and arguments (they depend on nothing else).

>>> import torch, torch.nn as nn
>>> import symshape as ss
>>> class Diff(nn.Module):
...     def forward(self, x):
...         return torch.diff(x, n=2)
>>> rep = ss.trace(Diff(), "2,L")
>>> rep.output_shape, rep.layers[0].attrs["fallback"]
((2, L - 2), 'meta')
>>> print(rep.domain[0])
L >= 2  [layer 'diff' (diff): torch's meta kernel for torch.diff assumes L ≥ 2]
"""
from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
from typing import Optional

import sympy
import torch
import torch.utils._sympy.functions as tf
from torch.utils._python_dispatch import TorchDispatchMode

from .floors import ceil_div, floor_div, mod, simplify_relation, smin
from .rules.registry import Out
from .standins import _TYPICAL  # the executor's typical size: every symbol's hint
from .symbols import ShapeError

__all__ = ["meta_rule", "meta_out", "translate", "eligible", "runnable", "FALLBACK"]

#: the attr that marks a layer whose formula came from torch's meta kernel
FALLBACK = {"fallback": "meta"}

_CACHE: dict = {}
_CACHE_MAX = 4096
_LOCK = threading.RLock()

#: torch functions whose guards only pick strides or a memory format, never a size (by their names:
#: ``is_contiguous``, ``_is_non_overlapping_and_dense_or_false``, ``make_contiguous_strides_for``, ...)
_STRIDE_ONLY = re.compile(r"contiguous|strides?(_|$)|dense|overlapping|memory_format|storage_length")


class _Untranslatable(Exception):
    pass


# -- torch's sympy -> symshape's floor algebra -------------------------------------------------
def _div_parts(a, b):
    if not (b.is_Integer and b > 0):
        raise _Untranslatable(f"a division by {b}, which is not a positive constant")
    return a, int(b)


def _floor(a, b):
    """floor(a / b) for a size *b* that torch divides by (positive where the kernel ran)."""
    if b.is_Integer:
        return floor_div(*_div_parts(a, b))
    return sympy.floor(sympy.cancel(a / b))


def translate(expr, symbols: dict):
    """*expr*, one of torch's sympy expressions (or relations) on the symbols of *symbols*, in
    symshape's floor algebra; raises ``_Untranslatable`` where that is not exact.

    >>> import sympy
    >>> from symshape.symbols import symbols as names
    >>> H = names("H")
    >>> s0 = sympy.Symbol("s0", integer=True, positive=True)
    >>> translate(tf.FloorDiv(s0 - 1, 2) + tf.CeilDiv(s0, 4) + tf.PythonMod(s0, 3), {s0: H})
    H - 3*floor(H/3) + floor(H/4 + 3/4) + floor(H/2 - 1/2)
    """
    t = functools.partial(translate, symbols=symbols)
    if isinstance(expr, (bool, sympy.logic.boolalg.BooleanAtom)):
        return sympy.true if expr else sympy.false
    if isinstance(expr, int):
        return sympy.Integer(expr)
    if expr.is_Symbol:
        if expr not in symbols:
            raise _Untranslatable(f"the symbol {expr}, which is none of the call's sizes")
        return symbols[expr]
    if expr.is_Integer or expr.is_Rational:
        return expr
    if expr.is_Number:
        raise _Untranslatable(f"the number {expr}, which is not exact")
    if isinstance(expr, (sympy.Eq, sympy.Ne, sympy.Lt, sympy.Le, sympy.Gt, sympy.Ge)):
        return type(expr)(t(expr.lhs), t(expr.rhs))
    if isinstance(expr, (sympy.And, sympy.Or, sympy.Not)):
        return type(expr)(*map(t, expr.args))
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        return type(expr)(*map(t, expr.args))
    if isinstance(expr, (sympy.Pow, tf.PowByNatural)):
        base, exp = expr.args
        if exp.is_Integer and exp >= 0:
            return t(base) ** int(exp)
        raise _Untranslatable(f"the power {expr}")
    if isinstance(expr, (tf.FloorDiv, tf.CleanDiv)):  # CleanDiv: torch has guarded divisibility
        return _floor(t(expr.args[0]), t(expr.args[1]))
    if isinstance(expr, tf.CeilDiv):
        a, b = t(expr.args[0]), t(expr.args[1])
        return ceil_div(*_div_parts(a, b)) if b.is_Integer else -_floor(-a, b)
    if isinstance(expr, (tf.Mod, tf.PythonMod, sympy.Mod)):
        a, b = t(expr.args[0]), t(expr.args[1])
        return mod(*_div_parts(a, b)) if b.is_Integer else a - b * _floor(a, b)
    if isinstance(expr, tf.ModularIndexing):
        base, div, modulus = map(t, expr.args)
        return mod(_floor(base, div), _div_parts(base, modulus)[1])
    if isinstance(expr, (tf.FloorToInt, tf.CeilToInt)) and isinstance(expr.args[0], tf.FloatTrueDiv):
        # floor(float(a) / float(b)) = floor(a / b) for integers below 2**53 (a correctly rounded division)
        a, b = _div_parts(t(expr.args[0].args[0]), t(expr.args[0].args[1]))
        return floor_div(a, b) if isinstance(expr, tf.FloorToInt) else ceil_div(a, b)
    if isinstance(expr, (tf.Max, sympy.Max)):
        return sympy.Max(*map(t, expr.args))
    if isinstance(expr, (tf.Min, sympy.Min)):
        return smin(*map(t, expr.args))
    if isinstance(expr, tf.Identity):
        return t(expr.args[0])
    raise _Untranslatable(f"{type(expr).__name__}({', '.join(map(str, expr.args))})")


# -- running the op ----------------------------------------------------------------------------
class _Recorder(TorchDispatchMode):
    """Names the aten op each new guard was recorded in, and sums the flop formulas of the ops."""

    def __init__(self, env):
        super().__init__()
        self.env, self.owner, self.flops, self.ops = env, {}, 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        before = len(self.env.guards)
        out = func(*args, **kwargs)
        name = str(func.overloadpacket)
        self.ops.append(name)
        for i in range(before, len(self.env.guards)):
            self.owner.setdefault(i, name)
        formula = flop_registry.get(func.overloadpacket)
        if formula is not None:
            self.flops = self.flops + formula(*args, **kwargs, out_val=out)
        return out


class _Call:
    """One op on fake tensors with symbolic sizes, and the translation of what torch did."""

    def __init__(self, hints=None):
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import ShapeEnv

        self.env = ShapeEnv(specialize_zero_one=False, duck_shape=False)
        self.mode = FakeTensorMode(shape_env=self.env, allow_non_fake_inputs=True)  # a helper's constants
        self.by_expr: dict = {}  # symshape expression -> SymInt
        self.symbols: dict = {}  # torch symbol -> symshape expression
        self.hints = hints or {}  # symshape symbol -> its hint, where not the typical size

    def size(self, expr):
        """A symshape size as an int or a SymInt: built from one torch symbol per symshape symbol
        (``floor(n/m)`` as ``n // m``, ``Min``/``Max`` as ``sym_min``/``sym_max``), so torch sees
        how the sizes relate; any other expression is one torch symbol of its own."""
        expr = sympy.sympify(expr, strict=True)
        if expr.is_Integer:
            return int(expr)
        if expr not in self.by_expr:
            try:
                self.by_expr[expr] = self._build(expr)
            except _Untranslatable:
                self.by_expr[expr] = self._symbol(expr)
        return self.by_expr[expr]

    def _build(self, e):
        if e.is_Integer:
            return int(e)
        if e.is_Symbol:
            return self._symbol(e)
        if e.is_Add:
            return functools.reduce(lambda a, b: a + b, (self._build(a) for a in e.args))
        if e.is_Mul:
            return functools.reduce(lambda a, b: a * b, (self._build(a) for a in e.args))
        if e.is_Pow and e.exp.is_Integer and e.exp > 0:
            return self._build(e.base) ** int(e.exp)
        if isinstance(e, sympy.floor):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            if den.is_Integer and den > 0:
                return self._build(sympy.expand(num)) // int(den)
        if isinstance(e, (sympy.Min, sympy.Max)):
            pick = torch.sym_min if isinstance(e, sympy.Min) else torch.sym_max
            return functools.reduce(pick, (self._build(a) for a in e.args))
        raise _Untranslatable(str(e))

    def _symbol(self, expr):
        from torch._dynamo.source import ConstantSource
        from torch.fx.experimental.symbolic_shapes import DimDynamic
        from torch.utils._sympy.numbers import int_oo

        hint = expr.subs({s: self.hints.get(s, _TYPICAL) for s in expr.free_symbols})
        if not hint.is_Integer or not expr.is_integer:
            raise _Untranslatable(f"the size {expr}, which is not an integer")
        sym = self.env.create_symbol(int(hint), ConstantSource(f"symshape_{len(self.symbols)}"),
                                     dynamic_dim=DimDynamic.DYNAMIC)
        if expr.is_Symbol:  # an input size: at least 1 (other expressions may be 0)
            self.env.constrain_symbol_range(sym, 1, int_oo)
        self.symbols[sym] = expr
        return self.env.create_symintnode(sym, hint=int(hint))

    def value(self, v, dtypes, counter):
        """A call's argument with shapes as fake tensors and symbolic sizes as SymInts."""
        from .report import Shape

        if isinstance(v, Shape):
            k = counter[0]
            counter[0] += 1
            dtype = dtypes[k] if k < len(dtypes) else dtypes[-1]
            return torch.empty(tuple(self.size(d) for d in v), dtype=dtype)
        if isinstance(v, sympy.Basic) and not isinstance(v, sympy.logic.boolalg.BooleanAtom):
            return self.size(v)
        if isinstance(v, (list, tuple)):
            items = [self.value(x, dtypes, counter) for x in v]
            return type(v)(items) if type(v) in (list, tuple) else tuple(items)
        if isinstance(v, dict):
            return {k: self.value(x, dtypes, counter) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(*(self.value(x, dtypes, counter) for x in (v.start, v.stop, v.step)))
        return v

    def out_size(self, s):
        if isinstance(s, int):
            return sympy.Integer(s)
        return translate(s.node.expr, self.symbols)


def _data_dependent(err) -> bool:
    from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    return isinstance(err, (DataDependentOutputException, DynamicOutputShapeException, GuardOnDataDependentSymNode))


def _op_label(target, method: bool) -> str:
    if method:
        return f"Tensor.{target}"
    module = getattr(target, "__module__", "") or ""
    name = getattr(target, "__name__", None) or str(target)
    if module in ("torch.nn.functional", "torch._C._nn"):
        return f"F.{name}"
    return f"torch.{name}" if module == "torch" or module.startswith("torch.") else name


def _run(target, method: bool, args, kwargs, dtypes, hints=None):
    call = _Call(hints)
    counter = [0]
    with call.mode:
        fargs = call.value(tuple(args), dtypes, counter)
        fkw = call.value(dict(kwargs), dtypes, counter)
        before = len(call.env.guards)
        recorder = _Recorder(call.env)
        with recorder:
            out = getattr(fargs[0], target)(*fargs[1:], **fkw) if method else target(*fargs, **fkw)
    return call, out, recorder, before


_DTYPES = ((torch.float32,), (torch.float32, torch.int64), (torch.int64,), (torch.bool,), (torch.float32, torch.bool))


def meta_out(target, method: bool, args: tuple, kwargs: dict) -> Out:
    """The :class:`Out` of one call of *target* (a torch function, or a Tensor method name when
    *method*) with symshape arguments (shapes for tensors, sympy expressions for sizes)."""
    label = _op_label(target, method)
    try:
        key = (target, method, _freeze(args), _freeze(kwargs))
        hash(key)
    except TypeError:
        key = None
    with _LOCK:
        if key is not None and key in _CACHE:
            return _CACHE[key]
    shape, macs, guards = _compute(target, method, args, kwargs, label)
    kept = list(guards)  # the formula holds where all of these hold: one guard is dropped at a time
    for guard in guards:
        if _holds_where_excluded(guard[0], (shape, macs, kept), target, method, args, kwargs, label):
            kept.remove(guard)
    for rel, op in kept:  # a size torch's kernel needed as a number (float() of it): fixed to its hint's value
        if isinstance(rel, sympy.Equality) and rel.free_symbols and \
                (rel.lhs - rel.rhs).subs({s: _TYPICAL for s in rel.free_symbols}) == 0:
            raise ShapeError(f"torch's meta kernel for {op} fixes {_show(rel)}: it reads the size as a number "
                             f"(float() or a Python int of it), so its formula would hold at that size only; give the "
                             f"size a fixed value in the input spec, or register a rule with @symshape.register")
    result = Out(shape, macs, tuple((rel, f"torch's meta kernel for {op} assumes {_show(rel)}") for rel, op in kept))
    with _LOCK:
        if key is not None:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = result
    return result


def _freeze(v):
    """A hashable key for a call's argument: shapes tagged (a tensor is not a tuple of sizes), lists as tuples."""
    from .report import Shape

    if isinstance(v, Shape):
        return ("shape",) + tuple(v)
    if isinstance(v, (list, tuple)):
        return (type(v).__name__,) + tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return ("dict",) + tuple((k, _freeze(x)) for k, x in sorted(v.items()))
    if isinstance(v, slice):
        return ("slice", _freeze(v.start), _freeze(v.stop), _freeze(v.step))
    return (type(v).__name__, v)


def _compute(target, method, args, kwargs, label, hints=None):
    """``(shape, macs, [(guard, aten op)])`` of one run at the typical hints."""
    first = None
    quiet = logging.getLogger("torch._subclasses.fake_tensor")
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        for dtypes in _DTYPES:  # the tensors' dtypes are not known: float first, then indices and masks
            try:
                call, out, recorder, before = _run(target, method, args, kwargs, dtypes, hints)
                break
            except _Untranslatable as err:
                raise ShapeError(f"torch's meta kernel for {label} cannot run on these sizes: {err}") from None
            except Exception as err:
                if _data_dependent(err):
                    raise ShapeError(_DATA_DEPENDENT.format(label=label)) from None
                first = first or err
        else:
            text = str(first).strip().splitlines()[0] if str(first).strip() else type(first).__name__
            raise ShapeError(f"{label} has no shape rule, and torch's meta kernel refuses the call at typical sizes "
                             f"(every symbol {_TYPICAL}): {type(first).__name__}: {text}") from None
    finally:
        quiet.level = level
    return _translate_run(call, out, recorder, before, label)


_DATA_DEPENDENT = ("{label} has no shape rule, and its output size depends on the values in its input, not only on "
                   "sizes (torch's meta kernel cannot compute it); symshape cannot give it a formula: register a rule "
                   "with @symshape.register that states the size you expect")


def _translate_run(call, out, recorder, before, label):
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    from .report import Shape

    def shape_of(t):
        if not isinstance(t, torch.Tensor):
            raise ShapeError(f"{label} has no shape rule, and torch returns {type(t).__name__}, not a tensor: "
                             f"register a rule with @symshape.register")
        if free_unbacked_symbols(t.shape):
            raise ShapeError(_DATA_DEPENDENT.format(label=label))
        return Shape(tuple(call.out_size(d) for d in t.shape))

    try:
        shape = shape_of(out) if not isinstance(out, (tuple, list)) or not out else tuple(shape_of(t) for t in out)
        guards = []
        for i, guard in enumerate(call.env.guards[before:], start=before):
            frame = guard.sloc.framework_loc
            if _STRIDE_ONLY.search(getattr(frame, "name", None) or "") and "_prims_common" in (frame.filename or ""):
                continue
            rel = translate(guard.expr, call.symbols)
            for part in (rel.args if isinstance(rel, sympy.And) else (rel,)):
                if part is not sympy.true and all(part != g for g, _ in guards):
                    guards.append((part, recorder.owner.get(i, label)))
        flops = recorder.flops
        macs = sympy.Integer(flops) / 2 if isinstance(flops, int) else translate(flops.node.expr, call.symbols) / 2
    except _Untranslatable as err:
        raise ShapeError(f"torch's meta kernel for {label} gives a size symshape cannot state exactly: {err}; "
                         f"register a rule with @symshape.register") from None
    return shape, macs, guards  # as torch counts them: a product of sizes stays one (expanding it is no better)


_MAX_EXCLUDED = 4  # points a guard excludes that are checked by running torch's kernel there


def _excluded_points(rel) -> Optional[list]:
    """The few values (at most ``_MAX_EXCLUDED``) of the one symbol of *rel* where it fails, or None
    (several symbols, or not shown to fail at few values only). The difference of its sides must
    move one way in the symbol (shown from its structure) and grow past 0: then, past the first
    value where it is positive, the relation holds for good (``H != 2``, ``floor(W/2) >= 2``)."""
    from .monotone import direction

    if len(rel.free_symbols) != 1 or not isinstance(rel, (sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt)):
        return None
    (s,) = rel.free_symbols
    diff = rel.lhs - rel.rhs if isinstance(rel, (sympy.Ne, sympy.Ge, sympy.Gt)) else rel.rhs - rel.lhs
    way = direction(diff, s, {s: 1}, frozenset({s}))
    if isinstance(rel, sympy.Ne) and way == -1:
        diff, way = -diff, 1
    if way != 1:
        return None
    points = []
    for v in range(1, 65):
        try:
            holds, positive = rel.subs(s, v), diff.subs(s, v) > 0
        except (TypeError, ZeroDivisionError):  # a size divided by a size that is 0 there
            return None
        if holds is sympy.false:
            points.append((s, v))
        if len(points) > _MAX_EXCLUDED or holds not in (sympy.true, sympy.false):
            return None
        if holds is sympy.true and positive is sympy.true:
            return points
    return None


def _holds_where_excluded(rel, result, target, method, args, kwargs, label) -> bool:
    """Whether the formula holds where the guard *rel* fails too, so that *rel* only chose torch's
    path (a size-1 broadcast check, an algorithm), not the result. Shown by torch's kernel itself:

    * at each of the few values of its one size where *rel* fails, the fallback there (the other sizes
      still symbolic; its own guards checked the same way) gives the same sizes and MACs under none
      but the guards still kept; or
    * run with that size's hint where *rel* fails (still symbolic), it gives the same formula and
      MACs under none but the guards still kept and the negation of *rel*: the formula holds on both sides.

    Guards are dropped one at a time, each checked against those still kept, so two guards never
    vouch for each other.
    """
    shape, macs, guards = result
    points = _excluded_points(rel)
    if points:
        return all(_same_at(rel, result, target, method, args, kwargs, label, s, v) for s, v in points)
    if len(rel.free_symbols) != 1:
        return False
    (s,) = rel.free_symbols
    try:
        v = next((v for v in (1, 2, 3, 4, 8, 16, 32, 64, 128) if rel.subs(s, v) is sympy.false), None)
    except (TypeError, ZeroDivisionError):
        return False
    if v is None:
        return False
    try:
        shape2, macs2, guards2 = _compute(target, method, args, kwargs, label, hints={s: v})
    except ShapeError:
        return False
    allowed = {simplify_relation(g) for g, _ in guards if g != rel} | {simplify_relation(sympy.Not(rel))}
    return shape2 == shape and sympy.expand(macs2 - macs) == 0 and all(
        simplify_relation(g) in allowed for g, _ in guards2)


def _same_at(rel, result, target, method, args, kwargs, label, s, v) -> bool:
    shape, macs, guards = result
    try:  # the whole fallback there (one size fewer): its own guards checked the same way, recursively
        there = meta_out(target, method, _subs(args, s, v), _subs(kwargs, s, v))
    except ShapeError:
        return False
    if _subs(shape, s, v) != there.shape or sympy.expand(macs.subs(s, v) - there.macs) != 0:
        return False
    others = {g.subs(s, v) for g, _ in guards if g != rel}
    return all(g in others for g, _ in there.requires)


def _subs(v, s, value):
    from .report import Shape

    if isinstance(v, Shape):
        return Shape(tuple(sympy.sympify(d).subs(s, value) for d in v))
    if isinstance(v, sympy.Basic):
        return v.subs(s, value)
    if isinstance(v, (list, tuple)):
        items = [_subs(x, s, value) for x in v]
        return type(v)(items) if type(v) in (list, tuple) else tuple(items)
    if isinstance(v, dict):
        return {k: _subs(x, s, value) for k, x in v.items()}
    return v


def _show(rel) -> str:
    from .printing import fmt

    rel = simplify_relation(rel)
    if isinstance(rel, sympy.Rel):
        ops = {sympy.Eq: "=", sympy.Ne: "≠", sympy.Ge: "≥", sympy.Gt: ">", sympy.Le: "≤", sympy.Lt: "<"}
        return f"{fmt(rel.lhs)} {ops.get(type(rel), rel.rel_op)} {fmt(rel.rhs)}"
    return str(rel)


def eligible(target, method: bool = False) -> bool:
    """Whether *target* is torch's (a torch function or a Tensor method name), so its meta kernel may stand in."""
    if method:
        return isinstance(target, str) and hasattr(torch.Tensor, target)
    module = getattr(target, "__module__", None) or ""
    return callable(target) and (module == "torch" or module.startswith("torch.")) and \
        not module.startswith(("torch.fx", "torch.nn.modules"))


def runnable(fn) -> bool:
    """Whether *fn* is a plain Python function (a model's helper that torch.fx kept as one call, such as
    a grid built from sizes): its body, made of torch ops, can run on fake tensors too."""
    return inspect.isfunction(fn) and not (getattr(fn, "__module__", "") or "").startswith("torch")


def meta_rule(target, method: bool = False):
    """A rule (``rule(*args, **kwargs) -> Out``) for *target* by torch's meta kernel."""
    def rule(*args, **kwargs):
        return meta_out(target, method, args, kwargs)

    rule.__name__ = f"meta_{getattr(target, '__name__', target)}"
    rule.__doc__ = f"torch's meta kernel for {_op_label(target, method)}, run on symbolic sizes"
    return rule
