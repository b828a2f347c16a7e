"""The executing front end: a module's real ``forward``, run in Python on stand-in tensors.

torch.fx cannot trace Python control flow on sizes (``if h % 32 != 0: raise``,
``math.ceil(x.shape[-1] / s)``, ``max(pad, 0)``, ``for i in range(x.shape[1])``). For such a
module the tracer runs the forward itself, as written, with each tensor replaced by a
:class:`Stand` that carries a symbolic :class:`~symshape.report.Shape`:

* a ``TorchFunctionMode`` sends every torch function, ``Tensor`` method and operator to the rule
  registered for it (the rules the graph front end uses, through :meth:`Tracer.apply`);
* ``x.shape``, ``x.size()``, ``x.ndim`` give ints where a size is fixed and :class:`Size` objects
  (sympy expressions with ``+ - * / // % **``, comparisons, ``math.ceil``/``floor``, ``max``/``min``)
  where it is symbolic;
* module calls are intercepted (``nn.Module.__call__`` is patched for the run, under the tracing
  lock): a module with a rule is one layer with its qualified name, any other runs its forward here;
* ``bool()`` of a size comparison (:class:`Cond`) gives its value where the domain collected so far
  decides it; otherwise it takes a branch and adds the comparison taken as a domain condition.
  The branch is the one that holds at a typical size (224), unless that branch makes the forward
  raise: then the run is repeated with the other one, and the model's own error message becomes the
  condition's reason (``if h % 32 != 0: raise RuntimeError(msg)`` gives ``Mod(H, 32) = 0`` with
  *msg*). Only that branch is traced: the domain says so, the formulas hold inside it.

Branching on tensor values (``if x.sum() > 0``) is refused with a ShapeError naming the module.

>>> import math
>>> import torch.nn as nn, torch.nn.functional as F
>>> import symshape as ss
>>> class Guarded(nn.Module):
...     def forward(self, x):
...         if x.shape[-1] % 8 != 0:
...             raise ValueError("the width must be a multiple of 8")
...         return F.avg_pool1d(x, x.shape[-1])
>>> rep = ss.trace(Guarded(), "1,3,W")
>>> rep.output_shape
(1, 3, 1)
>>> print(rep.domain[-1])  # doctest: +ELLIPSIS
W ≡ 0 (mod 8)  [layer '' (Guarded): the width must be a multiple of 8 (the forward of the model (Guarded) raises otherwise, at <doctest...>:3)]
"""
from __future__ import annotations

import builtins
import dataclasses
import math
import operator
import os
import sys
import threading
import traceback
from typing import Optional

import sympy
import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from .decide import always_nonnegative, compact
from .floors import ceil_div, floor_div, simplify_relation
from .graph import _FX_LOCK, _compacting, _qualify, _tensor_method_value, size_op
from .report import Outputs, Shape
from .rules.registry import rule_for
from .symbols import ShapeError

__all__ = ["run_forward", "Stand", "Size", "Cond"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))
_STATE = threading.local()
_MAX_RUNS = 32  # re-executions of one forward while looking for a branch that does not raise
_MAX_PROBES = 8  # other branches tried for the model's own error message
_TYPICAL = 224  # the size at which an undecided comparison picks its first branch


def _current() -> "Executor":
    ex = getattr(_STATE, "executor", None)
    if ex is None:
        raise ShapeError("a symbolic size or stand-in tensor was used outside the forward being traced")
    return ex


def _expr(v):
    if isinstance(v, Size):
        return v.expr
    if isinstance(v, Cond):
        return v.rel
    return v


def _size(e):
    """A size result: a Python int (or float, bool) when it is a number, else a :class:`Size`."""
    if isinstance(e, (bool, int, float)):
        return e
    if e is sympy.true or e is sympy.false:
        return bool(e)
    if isinstance(e, sympy.Rel) or isinstance(e, (sympy.And, sympy.Or, sympy.Not)):
        return Cond(e)
    if isinstance(e, sympy.Basic) and e.is_number:
        return int(e) if e.is_Integer else float(e)
    if isinstance(e, sympy.Expr):
        return Size(compact(e))
    return e


class Size(torch.SymInt):
    """A symbolic size: a sympy expression in the input's size symbols that Python code can compute with."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = expr

    def _op(self, fn, other, swap=False):
        if isinstance(other, (Stand, torch.Tensor)):
            return NotImplemented
        a, b = (_expr(other), self.expr) if swap else (self.expr, _expr(other))
        return _size(size_op(fn, (a, b)))

    def __neg__(self):
        return _size(-self.expr)

    def __pos__(self):
        return self

    def __abs__(self):
        return _size(sympy.Abs(self.expr))

    def __ceil__(self):
        num, den = sympy.fraction(sympy.together(self.expr))
        return _size(ceil_div(num, int(den)) if den.is_Integer and den > 0 else sympy.ceiling(self.expr))

    def __floor__(self):
        num, den = sympy.fraction(sympy.together(self.expr))
        return _size(floor_div(num, int(den)) if den.is_Integer and den > 0 else sympy.floor(self.expr))

    def __trunc__(self):
        if always_nonnegative(self.expr):
            return self.__floor__()
        raise _where_error("int() or math.trunc() of a size that may be negative")

    def __round__(self, ndigits=None):
        if ndigits is None and self.expr.is_integer:
            return self
        raise _where_error(f"round() of the symbolic size {self.expr}")

    def __int__(self):
        if self.expr.is_integer:
            raise _where_error(f"int() of the symbolic size {self.expr} (Python's int() must return a number); "
                               "use the size itself, or // for a division")
        raise _where_error(f"int() of the symbolic size {self.expr}; use // or math.floor/math.ceil instead")

    def __index__(self):
        raise _where_error(f"the symbolic size {self.expr} is used as a Python index or count (range(), a list "
                           "index); only fixed sizes can be")

    def __float__(self):
        raise _where_error(f"float() of the symbolic size {self.expr}")

    def __bool__(self):
        return bool(Cond(sympy.Ne(self.expr, 0)))

    def __hash__(self):
        return hash(self.expr)

    def __repr__(self):
        return str(self.expr)

    __str__ = __repr__

    def __format__(self, spec):
        return format(str(self.expr), spec)


def _size_ops():
    names = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
             "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow}
    for n, fn in names.items():
        setattr(Size, f"__{n}__", lambda self, o, fn=fn: self._op(fn, o))
        setattr(Size, f"__r{n}__", lambda self, o, fn=fn: self._op(fn, o, swap=True))
    for n in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(Size, f"__{n}__", lambda self, o, fn=getattr(operator, n): self._op(fn, o))


_size_ops()


class Cond:
    """A comparison of sizes. ``bool()`` asks the running executor to decide it (see the module's doc)."""

    __slots__ = ("rel",)

    def __init__(self, rel):
        self.rel = rel

    def __bool__(self):
        return _current().decide(self.rel)

    def __and__(self, other):
        return _size(sympy.And(self.rel, _expr(other)))

    def __or__(self, other):
        return _size(sympy.Or(self.rel, _expr(other)))

    __rand__, __ror__ = __and__, __or__

    def __invert__(self):
        return _size(sympy.Not(self.rel))

    def __hash__(self):
        return hash(self.rel)

    def __repr__(self):
        return str(self.rel)


def _sym_max(a, b, bigger: bool):
    diff = _expr(a) - _expr(b)
    if always_nonnegative(diff):
        return a if bigger else b
    if always_nonnegative(-diff):
        return b if bigger else a
    fn = sympy.Max if bigger else sympy.Min
    return _size(_current().tracer.simplify(fn(_expr(a), _expr(b))))


def _extremum(original, bigger):
    def pick(*args, **kwargs):
        items = args
        if len(args) == 1:
            items = list(args[0])
            args = (items,)
        if kwargs or not any(isinstance(v, Size) for v in items) or getattr(_STATE, "executor", None) is None:
            return original(*args, **kwargs)
        if not items:
            return original(*args)
        best = items[0]
        for v in items[1:]:
            best = _sym_max(best, v, bigger)
        return best
    pick.__name__ = original.__name__
    return pick


_MAX, _MIN = builtins.max, builtins.min
_SYM_MAX, _SYM_MIN = _extremum(_MAX, True), _extremum(_MIN, False)


def _user_frame():
    """``(file, line, code)`` of the innermost frame outside symshape and torch."""
    f = sys._getframe(1)
    while f is not None:
        path = os.path.abspath(f.f_code.co_filename)
        if not path.startswith((_HERE, _TORCH)):
            summary = traceback.extract_stack(f, limit=1)[-1]
            return os.path.basename(summary.filename), summary.lineno, (summary.line or "").strip()
        f = f.f_back
    return None


def _at() -> str:
    frame = _user_frame()
    return f"{frame[0]}:{frame[1]}" if frame else "an unknown line"


def _where_error(what: str) -> ShapeError:
    ex = getattr(_STATE, "executor", None)
    frame = _user_frame()
    at = f" at {frame[0]}:{frame[1]}: `{frame[2]}`" if frame else ""
    if ex is None:
        return ShapeError(f"{what}{at}")
    name, kind, inputs = ex.stack[-1]
    return ex.tracer.fail(name, kind, inputs, f"its forward uses {what}{at}")


class Stand:
    """A stand-in tensor: its symbolic shape; every operation on it goes to symshape's rules."""

    __slots__ = ("_shape",)

    def __init__(self, shape):
        self._shape = Shape(shape)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return _current().torch_call(func, args, kwargs or {})

    @property
    def shape(self):
        return tuple(_size(d) for d in self._shape)

    @property
    def ndim(self):
        return len(self._shape)

    def size(self, *dim):
        return _size(_tensor_method_value(self._shape, "size", dim)) if dim else self.shape

    def dim(self):
        return len(self._shape)

    ndimension = dim

    def numel(self):
        return _size(sympy.Mul(*self._shape))

    nelement = numel
    dtype = torch.float32
    device = torch.device("meta")
    is_cuda = is_sparse = is_quantized = is_nested = is_meta = requires_grad = False
    layout = torch.strided

    def is_floating_point(self):
        return True

    def is_contiguous(self, *args, **kwargs):
        return True

    def __getattr__(self, name):
        if name.startswith("__") or name in ("item", "tolist", "numpy", "data_ptr"):
            if name in ("item", "tolist", "numpy"):
                raise _where_error(f"the values of a tensor (Tensor.{name}()), which depend on the data")
            raise AttributeError(name)
        ex = _current()
        return lambda *args, **kwargs: ex.call(name, (self,) + args, kwargs, method=True)

    def __bool__(self):
        raise _where_error("the value of a tensor in a condition (data-dependent control flow)")

    def __len__(self):
        first = self.shape[0]
        if isinstance(first, Size):
            raise _where_error(f"len() of a tensor whose first size {first} is symbolic")
        return first

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __getitem__(self, index):
        return _current().call(operator.getitem, (self, index), {})

    def __setitem__(self, index, value):
        _current().call(operator.getitem, (self, index), {})  # checks the index; the shape stays

    def __repr__(self):
        return f"Stand{tuple(self._shape)}"

    def __hash__(self):
        return id(self)


def _binary(fn, swap=False):
    def method(self, other):
        args = (other, self) if swap else (self, other)
        return _current().call(fn, args, {})
    return method


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    _fn = getattr(operator, _n + "_" if _n in ("and", "or") else _n)
    setattr(Stand, f"__{_n}__", _binary(_fn))
    setattr(Stand, f"__r{_n}__", _binary(_fn, swap=True))
    if hasattr(operator, f"i{_n}"):
        setattr(Stand, f"__i{_n}__", _binary(getattr(operator, f"i{_n}")))
for _n in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(Stand, f"__{_n}__", _binary(getattr(operator, _n)))
for _n in ("neg", "pos", "invert"):
    setattr(Stand, f"__{_n}__", lambda self, fn=getattr(operator, _n): _current().call(fn, (self,), {}))


def _unwrap(v):
    """Stand-ins as shapes, sizes as sympy expressions, real tensors as their shapes."""
    if isinstance(v, Stand):
        return v._shape
    if isinstance(v, (Size, Cond)):
        return _expr(v)
    if isinstance(v, torch.Tensor):
        return Shape(tuple(v.shape))
    if isinstance(v, torch.Size):
        return tuple(v)
    if isinstance(v, (list, tuple)) and not isinstance(v, Shape):
        return type(v)(_unwrap(x) for x in v) if type(v) in (list, tuple) else tuple(_unwrap(x) for x in v)
    if isinstance(v, dict):
        return {k: _unwrap(x) for k, x in v.items()}
    if isinstance(v, slice):
        return slice(_unwrap(v.start), _unwrap(v.stop), _unwrap(v.step))
    return v


def _wrap(v):
    """A rule's output as stand-ins (several outputs as a tuple, or a dict with the output's names)."""
    if isinstance(v, Shape):
        return Stand(v)
    if isinstance(v, Outputs):
        items = tuple(_wrap(x) for x in v)
        return dict(zip(v.names, items)) if getattr(v, "names", None) else items
    if isinstance(v, (list, tuple)):
        return type(v)(_wrap(x) for x in v)
    if isinstance(v, dict):
        return {k: _wrap(x) for k, x in v.items()}
    if isinstance(v, sympy.Basic):
        return _size(v)
    return v


def _has_symbolic(v) -> bool:
    if isinstance(v, (Stand, Size, Cond)):
        return True
    if isinstance(v, (list, tuple)):
        return any(_has_symbolic(x) for x in v)
    if isinstance(v, dict):
        return any(_has_symbolic(x) for x in v.values())
    if isinstance(v, slice):
        return any(_has_symbolic(x) for x in (v.start, v.stop, v.step))
    return False


def _shapes(v) -> list:
    if isinstance(v, Shape):
        return [v]
    if isinstance(v, (list, tuple)):
        return [s for x in v for s in _shapes(x)]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _shapes(x)]
    return []


def _tensor_dunder(name: str):
    """``(operator function, swapped)`` for a Tensor dunder method name such as ``__radd__``."""
    core = name[2:-2]
    swap = core.startswith("r") and hasattr(operator, core[1:]) or core[1:] in ("and", "or")
    if swap:
        core = core[1:]
    fn = getattr(operator, core, None) or getattr(operator, core + "_", None)
    return (fn, swap) if fn is not None else (None, False)


class _Probe(BaseException):
    """Ends a probe run: the other branch reached an op without raising."""


@dataclasses.dataclass
class _Choice:
    rel: object
    value: bool
    flipped: bool  # the other value was tried and made the forward raise
    reason: Optional[str]
    index: Optional[int] = None  # where its condition is in tracer.domain


class _Mode(TorchFunctionMode):
    def __init__(self, executor):
        super().__init__()
        self.executor = executor

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.executor.torch_call(func, args, kwargs or {})


def _module_call(module, *args, **kwargs):
    ex = getattr(_STATE, "executor", None)
    if ex is None:
        return _ORIGINAL_CALL(module, *args, **kwargs)
    return ex.module_call(module, args, kwargs)


_ORIGINAL_CALL = nn.Module.__call__


class Executor:
    """Runs one module's forward on stand-ins, recording layers and conditions in *tracer*."""

    def __init__(self, tracer, module: nn.Module, name: str):
        self.tracer, self.root, self.root_name = tracer, module, name
        self.names = {}
        for sub, child in module.named_modules(remove_duplicate=False):
            self.names.setdefault(id(child), _qualify(name, sub))
        self.stack: list = []
        self.choices: list = []
        self.forced: list = []
        self.counts: dict = {}
        self.probe: Optional[int] = None
        self.armed = False

    # -- operations -------------------------------------------------------------------------
    def _layer_name(self, op: str) -> str:
        base = _qualify(self.stack[-1][0], op.strip("_") or "op")
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def call(self, target, args, kwargs, method=False):
        """Apply the rule for *target* (a function, or a method name when *method*)."""
        if method and target in ("size", "dim", "numel"):
            return getattr(args[0], target)(*args[1:])
        uargs, ukw = _unwrap(tuple(args)), _unwrap(dict(kwargs))
        op = target if method else (getattr(target, "__name__", None) or str(target).rsplit(".", 1)[-1])
        kind = f"Tensor.{target}" if method else op
        rule = rule_for(target)
        tensors = tuple(_shapes([uargs, ukw]))
        if rule is None:
            name, owner_kind, inputs = self.stack[-1]
            raise self.tracer.fail(name, owner_kind, inputs,
                                   f"its forward calls {kind} (at {_at()}) on {', '.join(map(str, tensors)) or 'sizes'}, "
                                   f"which has no shape rule; register one with @symshape.register("
                                   f"{repr(target) if method else op}) (a function of the call's arguments, tensors "
                                   f"given as shapes, returning the output shape)")
        if self.armed:
            raise _Probe
        out = self.tracer.apply(self._layer_name(op), kind, _compacting(rule), None, uargs, ukw, shown=tensors)
        return _wrap(out)

    def torch_call(self, func, args, kwargs):
        """A torch function, Tensor method or attribute reached through the mode or a stand-in."""
        if func is torch._assert and args and isinstance(args[0], Cond):
            message = args[1] if len(args) > 1 else kwargs.get("message", "")
            name, kind, inputs = self.stack[-1]
            self.tracer.require(name, kind, inputs, args[0].rel, f"{message} (asserted at {_at()})")
            return None
        if not _has_symbolic((args, kwargs)):
            return func(*args, **kwargs)  # fixed tensors (buffers, constants): torch itself
        name = getattr(func, "__name__", "")
        if name == "__get__":
            attr = getattr(getattr(func, "__self__", None), "__name__", "")
            return getattr(args[0], attr)
        if name and getattr(torch.Tensor, name, None) is func:
            if name.startswith("__") and name.endswith("__"):
                fn, swap = _tensor_dunder(name)
                if fn is not None:
                    return self.call(fn, (args[1], args[0]) if swap else args, kwargs)
            return self.call(name, args, kwargs, method=True)
        return self.call(func, args, kwargs)

    def module_call(self, module: nn.Module, args, kwargs):
        name = self.names.get(id(module)) or _qualify(self.stack[-1][0] if self.stack else "", type(module).__name__)
        if rule_for(module) is not None:
            if self.armed:
                raise _Probe
            return _wrap(self.tracer.run_module(module, name, _unwrap(tuple(args)), _unwrap(dict(kwargs)) or None))
        return self.run_forward_of(module, name, args, kwargs)

    def run_forward_of(self, module, name, args, kwargs):
        from .trace import _unsupported

        kind = type(module).__name__
        refusal = _unsupported(module)
        if refusal:
            raise self.tracer.fail(name, kind, _unwrap(tuple(args)), refusal)
        self.stack.append((name, kind, tuple(_shapes(_unwrap(tuple(args))))))
        try:
            return module.forward(*args, **kwargs)
        finally:
            self.stack.pop()

    # -- control flow -----------------------------------------------------------------------
    def decide(self, rel) -> bool:
        """The value of a size comparison: decided by the domain, else a branch taken (see the module's doc)."""
        tracer = self.tracer
        rel = simplify_relation(tracer.simplify(rel))
        if rel is sympy.true or rel is sympy.false:
            return bool(rel)
        negation = simplify_relation(sympy.Not(rel))
        if rel in tracer._seen or negation is sympy.false:
            return True
        if negation in tracer._seen or negation is sympy.true:
            return False
        known = _implied(rel, tracer)
        if known is not None:
            return known
        k = len(self.choices)
        if k < len(self.forced):
            value, flipped, reason = self.forced[k]
        else:
            value, flipped, reason = _typical(rel), False, None
        name, kind, inputs = self.stack[-1]
        who = f"the forward of {name!r} ({kind})" if name else f"the forward of the model ({kind})"
        why = f"{reason} ({who} raises otherwise, at {_at()})" if reason else f"{who} branches on it at {_at()}"
        before = len(tracer.domain)
        tracer.require(name, kind, inputs, rel if value else negation, why)
        self.choices.append(_Choice(rel, value, flipped, reason, before if len(tracer.domain) > before else None))
        if self.probe == k:
            self.armed = True
        return value

    # -- running ------------------------------------------------------------------------------
    def _state(self):
        t = self.tracer
        return list(t.layers), list(t.domain), set(t._seen)

    def _restore(self, state):
        t = self.tracer
        t.layers[:], t.domain[:], t._seen = list(state[0]), list(state[1]), set(state[2])
        t._lows = (-1, {})

    def _once(self, inputs, kwargs, forced, probe=None):
        self.forced, self.choices, self.counts, self.stack = forced, [], {}, []
        self.probe, self.armed = probe, False
        with _FX_LOCK:
            saved = (nn.Module.__call__, builtins.max, builtins.min, getattr(_STATE, "executor", None))
            nn.Module.__call__, builtins.max, builtins.min, _STATE.executor = _module_call, _SYM_MAX, _SYM_MIN, self
            try:
                with _Mode(self):
                    out = self.run_forward_of(self.root, self.root_name, _wrap(tuple(inputs)), _wrap(dict(kwargs)))
            finally:
                nn.Module.__call__, builtins.max, builtins.min, _STATE.executor = saved
        return _unwrap(out)

    def run(self, inputs, kwargs):
        start = self._state()
        forced, first = [], None
        for _ in range(_MAX_RUNS):
            self._restore(start)
            try:
                out = self._once(inputs, kwargs, forced)
                break
            except ShapeError:
                raise
            except Exception as err:  # the model's own raise (or an op torch would refuse): try the other branch
                first = first or err
                j = next((i for i in reversed(range(len(self.choices))) if not self.choices[i].flipped), None)
                if j is None:
                    raise self._failure(first) from None
                message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                forced = [(c.value, c.flipped, c.reason) for c in self.choices[:j]] + \
                         [(not self.choices[j].value, True, message)]
        else:
            raise self._failure(first) from None
        self._explain(inputs, kwargs, start)
        return out

    def _explain(self, inputs, kwargs, start):
        """For branches taken by default, run the other one up to its next op: if it raises, the
        model's message becomes the reason of the condition."""
        final, choices = self._state(), list(self.choices)
        messages = {}
        for j, c in enumerate(choices[:_MAX_PROBES]):
            if c.flipped or c.index is None:
                continue
            forced = [(d.value, d.flipped, d.reason) for d in choices[:j]] + [(not c.value, True, None)]
            self._restore(start)
            try:
                self._once(inputs, kwargs, forced, probe=j)
            except (_Probe, ShapeError):
                pass
            except Exception as err:
                text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                messages[j] = text
            finally:
                self._restore(final)
        for j, text in messages.items():
            cond = self.tracer.domain[choices[j].index]
            who = f"the forward of {cond.layer!r} ({cond.kind})" if cond.layer else f"the forward of the model ({cond.kind})"
            at = cond.why.rsplit(" at ", 1)[-1]
            self.tracer.domain[choices[j].index] = dataclasses.replace(cond, why=f"{text} ({who} raises otherwise, at {at})")
        self.choices = choices

    def _failure(self, err) -> ShapeError:
        frames = [f for f in traceback.extract_tb(err.__traceback__)
                  if not os.path.abspath(f.filename).startswith((_HERE, _TORCH))]
        at = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}: `{frames[-1].line}`" if frames else ""
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return self.tracer.fail(self.root_name, type(self.root).__name__, (),
                                f"running its forward on symbolic sizes raised {type(err).__name__}{at}: {text}; on "
                                f"every branch of the size conditions tried")


def _implied(rel, tracer) -> Optional[bool]:
    """Whether the domain's lower bounds decide an inequality, else None."""
    from .solve import implied_by_bounds

    if not isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan, sympy.LessThan, sympy.StrictLessThan)):
        return None
    big, small = (rel.lhs, rel.rhs) if isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)) else (rel.rhs, rel.lhs)
    strict = isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan))
    up = big - small - (1 if strict else 0)  # >= 0 where rel holds
    down = small - big - (0 if strict else 1)  # >= 0 where it fails
    lows = tracer.lows()
    for diff, value in ((up, True), (down, False)):
        if diff.is_number:
            if diff >= 0:
                return value
            continue
        if always_nonnegative(diff) or implied_by_bounds(sympy.Ge(diff, 0), lows):
            return value
    return None


def _typical(rel) -> bool:
    value = rel.subs({s: _TYPICAL for s in rel.free_symbols})
    return bool(value) if value in (sympy.true, sympy.false) else True


def run_forward(tracer, module: nn.Module, name: str, inputs: tuple, kwargs: Optional[dict] = None):
    """Run *module*'s forward on stand-ins for *inputs* (shapes), recording its layers and
    conditions in *tracer*; returns its output shape(s)."""
    return Executor(tracer, module, name).run(inputs, kwargs or {})
