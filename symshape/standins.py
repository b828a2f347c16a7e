"""Stand-ins for tensors and sizes while a forward runs on symbolic shapes (see execute.py).

:class:`Stand` is a tensor that is only its symbolic :class:`~symshape.report.Shape`; every torch
function, method and operator on it goes to the running executor, which applies symshape's rules.
:class:`Size` is a symbolic size (a sympy expression) that Python code computes with: ``+ - * /
// % **``, comparisons, ``math.ceil``/``math.floor``, ``max``/``min`` (through :func:`sym_max`
patched into builtins for the run); a fixed size is a plain int. :class:`Cond` is a comparison of
sizes whose ``bool()`` the executor decides. ``int()`` in the forward's own modules is
:data:`INT`, which keeps a size symbolic (:func:`sym_int`); ``float()`` there gives a
:class:`FloatSize`, which may scale tensor values only. What cannot be symbolic (``range()``
over a symbolic size, a list of that length, a tensor's values, ``int()`` inside torch) is a
ShapeError naming the layer and the line.
"""
from __future__ import annotations

import builtins
import operator
import os
import sys
import threading
import traceback

import sympy
import torch

from .decide import always_nonnegative

from .forms import compact
from .floors import ceil_of, floor_of
from .frontends import _any, _tensor_method_value, _tensors, size_op
from .report import Outputs, Shape
from .symbols import ShapeError

__all__ = ["Stand", "Size", "FloatSize", "Cond"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))
_STATE = threading.local()

_TYPICAL = 224  # the size at which an undecided comparison picks its first branch


def _current():
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
        return _size(ceil_of(self.expr))

    def __floor__(self):
        return _size(floor_of(self.expr))

    def __trunc__(self):
        return sym_int(self)

    def __round__(self, ndigits=None):
        if ndigits is None and self.expr.is_integer:
            return self
        raise _where_error(f"round() of the symbolic size {self.expr}")

    def __int__(self):
        names = ", ".join(sorted(s.name for s in self.expr.free_symbols))
        if self.expr.is_integer:
            raise _where_error(
                f"int() of the symbolic size {self.expr}",
                lambda kind: f"Python's int() must return a number, so the size cannot stay symbolic past it; the size "
                             f"is already an integer, so in your own code drop the int(); else register a shape rule for "
                             f"{kind} (@symshape.register({kind})), or give {names} a fixed value in the input spec")
        raise _where_error(f"int() of the symbolic size {self.expr}",
                           lambda kind: "Python's int() must return a number; use // or math.floor/math.ceil "
                                        f"instead, register a shape rule for {kind}, or give {names} a fixed value")

    def __index__(self):
        raise _where_error(f"the symbolic size {self.expr} as a Python index or count (range(), a list index), "
                           "which only a fixed size can be")

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


def sym_int(v):
    """``int(v)`` of a symbolic size, as Python computes it: a size that is an integer stays
    itself; a rational one (``H / 2``) is rounded toward zero, floor where it is never negative,
    ceil where never positive, else the executor decides ``v >= 0``. A size with a float in it
    (``H * 0.1``) is refused: Python rounds the float product before int() truncates it."""
    e = v.expr
    if e.is_integer:
        return v
    if e.has(sympy.Float):
        raise _where_error(f"int() of the size {e}, a floating-point value (Python rounds the float before int() "
                           "truncates it, so no exact formula follows)",
                           lambda kind: "use // or math.floor/math.ceil on integer sizes instead")
    num, den = sympy.fraction(sympy.together(e))  # (8 - W)/3 >= 0 is asked as W <= 8
    sign = sympy.Ge(num, 0) if den.is_number and den > 0 else sympy.Ge(e, 0)
    if always_nonnegative(e) or (not always_nonnegative(-e) and Cond(sign)):
        return _size(floor_of(e))
    return _size(ceil_of(e))


class FloatSize(Size):
    """``float()`` of a symbolic size, and arithmetic on it: a value that may only scale tensor
    values (``torch.arange(0.5, h) / float(h)``), which leaves shapes alone. Python computes it in
    floating point, which rounds, so what would make it a size or a branch (int(), math.floor,
    comparisons, an index, an argument of another op) is refused with the line."""

    __slots__ = ()

    def _op(self, fn, other, swap=False):
        if fn in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
            raise _float_error(self, "a comparison of")
        out = Size._op(self, fn, other, swap)
        return FloatSize(out.expr) if isinstance(out, Size) else out

    def __neg__(self):
        return FloatSize(-self.expr)

    def __abs__(self):
        return FloatSize(sympy.Abs(self.expr))

    def __float__(self):
        return self

    def __bool__(self):
        raise _float_error(self, "the truth of")

    def __int__(self):
        raise _float_error(self, "int() of")

    __trunc__ = __int__

    def __floor__(self):
        raise _float_error(self, "math.floor() of")

    def __ceil__(self):
        raise _float_error(self, "math.ceil() of")

    def __round__(self, ndigits=None):
        raise _float_error(self, "round() of")

    def __index__(self):
        raise _float_error(self, "an index or count from")

    __hash__ = Size.__hash__


def _float_error(v, what: str) -> ShapeError:
    return _where_error(f"{what} the float {v.expr} computed from a size (Python rounds floats, so no exact "
                        f"formula follows)", lambda kind: "compute sizes with integers (//, math.floor, math.ceil), "
                                                          "or give its sizes a fixed value")


class _NumberType(type):
    """The type of :data:`INT` and :data:`FLOAT`: calling it is ``int()`` / ``float()``, symbolic
    sizes included; ``isinstance`` and ``issubclass`` answer as for Python's own type."""

    def __call__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and isinstance(args[0], Size):
            return cls.symbolic(args[0])
        return cls.python(*args, **kwargs)

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.python)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.python)


_INT, _FLOAT = builtins.int, builtins.float


class INT(int, metaclass=_NumberType):
    """Python's ``int`` for the forward's own modules while it runs (see :func:`user_globals`):
    ``int(x.shape[-1] // 2)`` stays symbolic."""

    python = _INT

    @staticmethod
    def symbolic(v):
        if isinstance(v, FloatSize):
            raise _float_error(v, "int() of")
        return sym_int(v)


class FLOAT(float, metaclass=_NumberType):
    """Python's ``float`` for the forward's own modules while it runs: ``float(h)`` of a symbolic
    size is a :class:`FloatSize`."""

    python = _FLOAT

    @staticmethod
    def symbolic(v):
        return v if isinstance(v, FloatSize) else FloatSize(v.expr)


INT.__name__ = INT.__qualname__ = "int"
FLOAT.__name__ = FLOAT.__qualname__ = "float"
NUMBERS = {"int": INT, "float": FLOAT}  # the names shadowed in the forward's own modules
_SKIP = ("torch", "symshape", "sympy", "builtins", "numpy")


def user_globals(module) -> list:
    """The global namespaces where the names ``int`` and ``float`` are shadowed (:data:`NUMBERS`) for a run of
    *module*'s forward: every module of the packages that define *module*'s submodules (their
    helper functions included), torch's and symshape's own left out."""
    tops = {type(m).__module__.split(".")[0] for m in module.modules()} - set(_SKIP)
    return [vars(m) for n, m in list(sys.modules.items())
            if m is not None and n.split(".")[0] in tops and hasattr(m, "__dict__")]


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


def _where_error(what: str, fix=None) -> ShapeError:
    """A ShapeError for *what* the forward did, where it did it, and *fix* (a function of the
    module's type name) after that."""
    ex = getattr(_STATE, "executor", None)
    frame = _user_frame()
    at = f" at {frame[0]}:{frame[1]}: `{frame[2]}`" if frame else ""
    kind = ex.stack[-1][1] if ex is not None else "the module"
    after = f": {fix(kind)}" if fix else ""
    if ex is None:
        return ShapeError(f"{what}{at}{after}")
    name, kind, inputs = ex.stack[-1]
    return ex.tracer.fail(name, kind, inputs, f"its forward uses {what}{at}{after}")


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
        _current().call(operator.setitem, (self, index, value), {})  # checks the index; the shape stays

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
    """Whether *v* holds a stand-in, a symbolic size or a size condition (in lists, dicts, slices)."""
    return _any(v, lambda x: isinstance(x, (Stand, Size, Cond)))


_shapes = _tensors  # the symbolic shapes inside a call's arguments, in order


def _tensor_dunder(name: str):
    """``(operator function, swapped)`` for a Tensor dunder method name such as ``__radd__``."""
    core = name[2:-2]
    swap = core.startswith("r") and hasattr(operator, core[1:]) or core[1:] in ("and", "or")
    if swap:
        core = core[1:]
    fn = getattr(operator, core, None) or getattr(operator, core + "_", None)
    return (fn, swap) if fn is not None else (None, False)
