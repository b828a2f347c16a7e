"""What the two front ends share, the torch.fx graph (graph.py) and the executor of a real forward on
stand-ins (execute.py): one lock around global patching, qualified layer names, and rules whose
output sizes are compacted; arithmetic on sizes (size_op) and the values a tensor's attributes
and size methods give."""
from __future__ import annotations

import dataclasses
import math
import operator
import threading
from typing import Optional

import sympy
import torch.nn as nn
import torch.nn.modules.module as _module
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from .decide import always_nonnegative

from .forms import compact
from .floors import ceil_of, floor_div, floor_of, mod
from .report import Shape
from .rules.registry import Out
from .symbols import ShapeError

__all__ = ["FX_LOCK", "qualify", "compacting", "size_op"]

# torch.fx patches process-wide functions while it traces (nn.Module.__call__, getattr, wrapped
# functions) and restores them afterwards; two traces at once in two threads restore each other's
# patches, leaving fx's patcher installed, after which every model(x) raises NameError. One fx
# trace at a time, then (re-entrant: a trace may start another in the same thread).
FX_LOCK = threading.RLock()


def qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else (prefix or name)


def _compact_shape(value):
    if isinstance(value, tuple) and all(isinstance(d, (int, sympy.Expr)) for d in value):
        return tuple(compact(d) if isinstance(d, sympy.Expr) else d for d in value)
    if isinstance(value, tuple):
        return tuple(_compact_shape(v) for v in value)
    return value


def compacting(rule):
    """The rule with every output size passed through :func:`symshape.forms.compact`, so that sums
    of floors from size arithmetic (padding to even sizes, strided slices) stay one floor."""
    def run(*args, **kwargs):
        out = rule(*args, **kwargs)
        if isinstance(out, Out):
            return dataclasses.replace(out, shape=_compact_shape(out.shape))
        return _compact_shape(out)
    run.__wrapped__ = rule  # its signature, for the call's flags (trace.call_flags)
    run._memo_tag = ("compacting", rule)  # one rule: its results are kept within a trace (memo.py)
    return run


class _Opaque:
    """A value the graph carries but symshape does not model (a dtype, a device)."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


def _is_symbolic(v) -> bool:
    return isinstance(v, sympy.Basic) and not v.is_Number


def _concrete(v):
    if isinstance(v, sympy.Integer):
        return int(v)
    if isinstance(v, sympy.Float):
        return float(v)
    if isinstance(v, sympy.Rational):
        return float(v)
    if v is sympy.true:
        return True
    if v is sympy.false:
        return False
    return v


def _any(value, pred) -> bool:
    if pred(value):
        return True
    if isinstance(value, (list, tuple)) and not isinstance(value, Shape):
        return any(_any(v, pred) for v in value)
    if isinstance(value, dict):
        return any(_any(v, pred) for v in value.values())
    if isinstance(value, slice):
        return any(_any(v, pred) for v in (value.start, value.stop, value.step))
    return False


def _tensors(value) -> list:
    if isinstance(value, Shape):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _tensors(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _tensors(v)]
    return []


_RELATIONS = {operator.eq: sympy.Eq, operator.ne: sympy.Ne, operator.lt: sympy.Lt, operator.le: sympy.Le,
              operator.gt: sympy.Gt, operator.ge: sympy.Ge}


def size_op(fn, args):
    """Arithmetic on sizes: exact integer floor algebra for ``//``, ``%`` and math.ceil/floor/trunc, sympy relations for
    comparisons, sympy arithmetic otherwise; Python values when nothing is symbolic.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> size_op(operator.floordiv, (H - 1, 2)), size_op(operator.mod, (-H, 7)) == -H - 7*sympy.floor(-H/7)
    (floor(H/2 - 1/2), True)
    >>> size_op(operator.eq, (H, 224))
    Eq(H, 224)
    >>> size_op(math.ceil, (H / 8,)), size_op(math.floor, ((H - 1) / 2,))
    (floor(H/8 + 7/8), floor(H/2 - 1/2))
    """
    if not any(_is_symbolic(a) for a in args):
        return fn(*[_concrete(a) for a in args])
    a = [sympy.sympify(_concrete(v), strict=True) for v in args]
    if fn in _RELATIONS:
        return _RELATIONS[fn](a[0], a[1])
    if fn in (operator.floordiv, operator.ifloordiv):
        if a[1].is_Integer and a[1] > 0:
            return floor_div(a[0], int(a[1]))
        return sympy.floor(a[0] / a[1])
    if fn in (operator.mod, operator.imod):
        if a[1].is_Integer and a[1] > 0:
            return mod(a[0], int(a[1]))
        return sympy.Mod(a[0], a[1])
    if fn in (operator.truediv, operator.itruediv):
        return a[0] / a[1]
    if fn is math.ceil:
        return ceil_of(a[0])
    if fn is math.floor:
        return floor_of(a[0])
    if fn is math.trunc:
        if not always_nonnegative(a[0]):
            raise ShapeError(f"math.trunc() of the size {a[0]}, which may be negative: use math.floor or // instead")
        return floor_of(a[0])
    if fn in (operator.and_, operator.iand):
        return sympy.And(*a)
    if fn in (operator.or_, operator.ior):
        return sympy.Or(*a)
    if fn is operator.not_:
        return sympy.Not(a[0])
    return fn(*a)


_SIZE_FNS = {getattr(operator, n) for n in (
    "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos", "abs", "eq", "ne", "lt", "le", "gt", "ge",
    "iadd", "isub", "imul", "ifloordiv", "itruediv", "imod", "and_", "or_", "not_", "iand", "ior")} | {
    math.ceil, math.floor, math.trunc}


def _tensor_attr(x: Shape, attr: str):
    if attr == "shape":
        return tuple(x)
    if attr == "ndim":
        return len(x)
    if attr in ("dtype", "device", "layout", "is_cuda", "requires_grad", "data"):
        return x if attr == "data" else _Opaque(attr)
    if attr == "T":
        return Shape(tuple(reversed(x)))
    raise ShapeError(f"the graph reads the tensor attribute {attr!r}, which symshape does not model")


def _tensor_method_value(x: Shape, method: str, args):
    """size(), dim(), numel(): values about a tensor, not new tensors. None when not one of them."""
    if method == "size":
        if args:
            i = _concrete(args[0])
            if not -len(x) <= i < len(x):
                raise ShapeError(f"size({i}) is out of range for the {len(x)}-d tensor {x}")
            return x[i]
        return tuple(x)
    if method in ("dim", "ndimension"):
        return len(x)
    if method in ("numel", "nelement"):
        return sympy.Mul(*x)
    return None


#: forward pre-hooks that torch itself installs and that keep the shapes (they recompute a weight)
_SHAPE_KEEPING_HOOKS = (WeightNorm, SpectralNorm)


def _hook_names(hooks) -> str:
    return ", ".join(getattr(h, "__qualname__", None) or type(h).__name__ for h in hooks)


def walked(module) -> bool:
    """Whether a module without a rule is traced through (its forward run op by op): every module
    outside torch.nn, and torch.nn's own composites (the Transformer layers: modules with children)."""
    return not type(module).__module__.startswith("torch.nn.") or next(module.children(), None) is not None


def unsupported(module: nn.Module) -> Optional[str]:
    """Why symshape cannot trace *module* as torch would run it, or None: forward hooks (which may
    change what the module returns, and which a shape rule does not run) and lazy modules whose
    parameters, and so whose shapes, are not known yet."""
    if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
        return ("its parameters are not materialized yet (a lazy module infers them from its first input); run one "
                "forward pass on an example input first, e.g. model(torch.zeros(1, 3, 224, 224)), then trace the model")
    pre = [h for h in module._forward_pre_hooks.values() if not isinstance(h, _SHAPE_KEEPING_HOOKS)]
    post = list(module._forward_hooks.values())
    if pre or post:
        which = "forward pre-hooks" if pre and not post else "forward hooks"
        return (f"it has {which} registered ({_hook_names(pre + post)}), which torch runs around its forward and "
                "which may change its inputs or output; symshape does not run hooks: remove them (handle.remove()) "
                "before tracing, or register a shape rule for a module that does what the hook does")
    return None


def global_hooks_refusal() -> Optional[str]:
    """Why tracing is refused while global forward hooks are registered, or None."""
    hooks = list(_module._global_forward_pre_hooks.values()) + list(_module._global_forward_hooks.values())
    if not hooks:
        return None
    return (f"global forward hooks are registered ({_hook_names(hooks)}; torch.nn.modules.module."
            "register_module_forward_hook / register_module_forward_pre_hook), which torch runs around every module "
            "and which may change inputs or outputs; symshape does not run hooks: remove them before tracing")
