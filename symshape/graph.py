"""The graph front end: any module that ``torch.fx.symbolic_trace`` can trace.

The module's forward is traced into a graph once, with every module that has a shape rule kept
as a leaf (so user rules registered with :func:`symshape.register` are honoured, and leaves are
named exactly as ``named_modules()`` names them). The graph is then interpreted on symbolic
values: a tensor is its :class:`~symshape.report.Shape`, a size (``x.size(2)``, ``x.shape[0]``) is
a sympy expression, and anything else is the plain Python value. Module calls go through
:meth:`Tracer.run_module`; function and method calls on tensors go through :meth:`Tracer.apply`
with the rule registered for the function (``torch.flatten``) or the method name (``"view"``);
arithmetic on sizes is evaluated here with the floor algebra (``//`` is
:func:`~symshape.floors.floor_div`, ``%`` is :func:`~symshape.floors.mod`).

>>> import torch.nn as nn
>>> import symshape as ss
>>> class Residual(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(8, 8, 3, padding=1)
...     def forward(self, x):
...         return x + self.conv(x)
>>> rep = ss.trace(Residual(), "1,8,H,W")
>>> [(layer.name, layer.kind) for layer in rep.layers]
[('conv', 'Conv2d'), ('add', 'add')]
>>> rep.output_shape
(1, 8, H, W)
"""
from __future__ import annotations

import dataclasses
import inspect
import operator
import os
import threading
import traceback
from typing import Optional

import sympy
import torch
import torch.fx as fx
import torch.nn as nn

from .decide import compact
from .floors import floor_div, mod
from .report import Shape
from .rules.registry import Out, rule_for
from .symbols import ShapeError

__all__ = ["run_graph", "fx_graph", "GraphTracer"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


# torch.fx patches process-wide functions while it traces (nn.Module.__call__, getattr, wrapped
# functions) and restores them afterwards; two traces at once in two threads restore each other's
# patches, leaving fx's patcher installed, after which every model(x) raises NameError. One fx
# trace at a time, then (re-entrant: a trace may start another in the same thread).
_FX_LOCK = threading.RLock()


class GraphTracer(fx.Tracer):
    """An fx tracer whose leaves are the modules symshape has a rule for, plus built-in torch.nn
    modules without one (so that their missing rule is reported by name, not traced into).
    Tracing is serialised across threads (see ``_FX_LOCK``)."""

    def trace(self, root, concrete_args=None):
        with _FX_LOCK:
            return super().trace(root, concrete_args)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if rule_for(m) is not None:
            return True
        if isinstance(m, _CONTAINERS):
            return False
        return type(m).__module__.startswith("torch.nn.")


def _user_frame(tb) -> Optional[traceback.FrameSummary]:
    """The innermost frame of the traceback outside torch.fx and symshape: where tracing stopped."""
    here = os.path.dirname(os.path.abspath(__file__))
    fx_dir = os.path.dirname(os.path.abspath(fx.__file__))
    frames = [f for f in traceback.extract_tb(tb)
              if not os.path.abspath(f.filename).startswith((here, fx_dir))]
    return frames[-1] if frames else None


def fx_graph(module: nn.Module, name: str = "") -> fx.Graph:
    """The fx graph of *module*'s forward with symshape's leaves, or a ShapeError that says where
    tracing stopped and how to help it.

    >>> import torch.nn as nn
    >>> class Branchy(nn.Module):
    ...     def forward(self, x):
    ...         if x.size(2) > 8:
    ...             return x[:, :, :8]
    ...         return x
    >>> fx_graph(Branchy())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: torch.fx cannot trace its forward: ... stopped in Branchy.forward at ...: `if x.size(2) > 8:`; ...
    """
    tracer = GraphTracer()
    try:
        return tracer.trace(module)
    except ShapeError:
        raise
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError... re-raised with where and how
        stack = list(getattr(tracer, "module_stack", {}).values())
        inner = stack[-1] if stack and stack[-1][0] else None
        kind = (inner[1].__name__ if isinstance(inner[1], type) else str(inner[1]).rsplit(".", 1)[-1]) if inner \
            else type(module).__name__
        what = f"the forward of layer {_qualify(name, inner[0])!r} ({kind}) inside it" if inner else "its forward"
        frame = _user_frame(err.__traceback__)
        at = ""
        if frame is not None:
            at = f" stopped in {kind}.{frame.name} at {os.path.basename(frame.filename)}:{frame.lineno}: `{frame.line}`;"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(
            f"torch.fx cannot trace {what}: {first};{at} "
            f"register a shape rule for {kind} with @symshape.register({kind}) (a function (module, *input_shapes) "
            f"-> output shape), which makes it a leaf that is not traced into, or remove the Python control flow "
            f"on sizes from its forward"
        ) from None


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
    """Arithmetic on sizes: exact integer floor algebra for ``//`` and ``%``, sympy relations for
    comparisons, sympy arithmetic otherwise; Python values when nothing is symbolic.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> size_op(operator.floordiv, (H - 1, 2)), size_op(operator.mod, (-H, 7)) == -H - 7*sympy.floor(-H/7)
    (floor(H/2 - 1/2), True)
    >>> size_op(operator.eq, (H, 224))
    Eq(H, 224)
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
    if fn in (operator.and_, operator.iand):
        return sympy.And(*a)
    if fn in (operator.or_, operator.ior):
        return sympy.Or(*a)
    if fn is operator.not_:
        return sympy.Not(a[0])
    return fn(*a)


_SIZE_FNS = {getattr(operator, n) for n in (
    "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos", "abs", "eq", "ne", "lt", "le", "gt", "ge",
    "iadd", "isub", "imul", "ifloordiv", "itruediv", "imod", "and_", "or_", "not_", "iand", "ior")}


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


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else (prefix or name)


def _op_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return node.target
    target = node.target
    return getattr(target, "__name__", None) or str(target).rsplit(".", 1)[-1]


class _Names:
    """Readable, unique layer names for function nodes: the enclosing module path + the op name."""

    def __init__(self):
        self.counts: dict = {}

    def __call__(self, prefix: str, node: fx.Node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        owner = list(stack.values())[-1][0] if stack else ""
        base = _qualify(_qualify(prefix, owner), _op_name(node).strip("_") or "op")
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _fetch_attr(module: nn.Module, target: str):
    obj = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def run_graph(tracer, module: nn.Module, name: str, inputs: tuple, kwargs: Optional[dict] = None):
    """Trace *module* with torch.fx and interpret its graph on symbolic values, recording layers
    and domain conditions in *tracer* (a :class:`symshape.trace.Tracer`)."""
    try:
        graph = fx_graph(module, name)
    except ShapeError as err:
        raise tracer.fail(name, type(module).__name__, inputs, str(err)) from None
    return interpret(tracer, module, graph, name, inputs, kwargs or {})


def interpret(tracer, module, graph: fx.Graph, name: str, inputs: tuple, kwargs: dict, names=None):
    """Run *graph* (traced from *module*) on symbolic *inputs*."""
    names = names or _Names()
    env: dict = {}
    pending = list(inputs)
    kind = type(module).__name__ if isinstance(module, nn.Module) else getattr(module, "__name__", "function")
    for node in graph.nodes:
        if node.op == "placeholder":
            arg = node.target.lstrip("*")
            if node.target.startswith("*"):
                env[node], pending = tuple(pending), []
            elif arg in kwargs:
                env[node] = kwargs[arg]
            elif pending:
                env[node] = pending.pop(0)
            elif node.args:
                env[node] = node.args[0]
            else:
                raise tracer.fail(name, kind, inputs, f"forward() needs the argument {arg!r}; pass one input shape "
                                                      "per tensor argument")
            continue
        if node.op == "output":
            return fx.node.map_arg(node.args[0], lambda n: env[n])
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kw = dict(fx.node.map_arg(node.kwargs, lambda n: env[n]))
        if node.op == "get_attr":
            value = _fetch_attr(module, node.target)
            env[node] = Shape(tuple(value.shape)) if isinstance(value, torch.Tensor) else value
        elif node.op == "call_module":
            sub = module.get_submodule(node.target)
            env[node] = tracer.run_module(sub, _qualify(name, node.target), tuple(args), kw or None)
        else:  # call_function, call_method
            env[node] = _call(tracer, node, node.target, args, kw, name, names)
    raise ShapeError(f"the graph of {kind} has no output")


def _call(tracer, node, target, args, kw, prefix, names):
    is_method = node.op == "call_method"
    if is_method and isinstance(args[0], Shape):
        value = _tensor_method_value(args[0], target, args[1:])
        if value is not None:
            return value
    if not is_method:
        if target is getattr and isinstance(args[0], Shape):
            return _tensor_attr(args[0], args[1])
        if target is torch._assert:
            cond, message = args[0], args[1] if len(args) > 1 else kw.get("message", "")
            if _is_symbolic(cond):
                tracer.require(names(prefix, node), "_assert", (), cond, str(message))
            elif not _concrete(cond):
                raise ShapeError(f"the model asserts {message!r}, which fails for every input size")
            return None
        if target is operator.getitem and not isinstance(args[0], Shape):
            index = args[1]
            container = args[0]
            if isinstance(index, slice):
                return container[slice(*(_concrete(v) for v in (index.start, index.stop, index.step)))]
            return container[_concrete(index)]
    tensors = _tensors(list(args) + list(kw.values()))
    if not tensors:
        if not is_method and target in _SIZE_FNS:
            value = size_op(target, args)
            return compact(value) if isinstance(value, sympy.Expr) else value
        if is_method:
            return getattr(args[0], target)(*args[1:], **kw)
        if _any((args, kw), _is_symbolic):
            if target in (max, min) and len(args) == 2:
                return sympy.Max(*args) if target is max else sympy.Min(*args)
            rule = rule_for(target)
            if rule is None:
                raise ShapeError(f"no rule for {_op_name(node)} on symbolic sizes {args}; register one with "
                                 f"@symshape.register({_op_name(node)})")
        else:
            rule = rule_for(target)
            if rule is None:  # constants: run the function itself (math.sqrt(64), torch.Size(...), ...)
                return target(*[_concrete(a) for a in args], **{k: _concrete(v) for k, v in kw.items()})
    rule = rule_for(target)
    op_name = _op_name(node)
    kind = f"Tensor.{target}" if is_method else op_name
    if rule is None:
        if not is_method and inspect.isfunction(target) and not _is_torch(target):
            return _run_wrapped(tracer, target, args, kw, names(prefix, node), names)
        raise ShapeError(
            f"no shape rule for {'the method ' if is_method else ''}{kind} (graph node {node.name!r} in "
            f"{prefix or 'the model'!r}) on inputs {', '.join(str(s) for s in tensors)}; register one with "
            f"@symshape.register({repr(target) if is_method else op_name}) (a function of the call's arguments, "
            f"tensors given as shapes, returning the output shape)"
        )
    inplace = kw.get("inplace") is True or target in _INPLACE_OPERATORS or str(
        target if is_method else op_name).endswith("_") and not str(target).endswith("__")
    return tracer.apply(names(prefix, node), kind, _compacting(rule), None, tuple(args), kw,
                        attrs={"inplace": True} if inplace else None, shown=tuple(tensors))


#: Python's augmented assignments (``x += y``): they write into their left operand.
_INPLACE_OPERATORS = {getattr(operator, n) for n in (
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior", "ixor", "ilshift", "irshift")}


def _compact_shape(value):
    if isinstance(value, tuple) and all(isinstance(d, sympy.Expr) for d in value):
        return tuple(compact(d) for d in value)
    if isinstance(value, tuple):
        return tuple(_compact_shape(v) for v in value)
    return value


def _compacting(rule):
    """The rule with every output size passed through :func:`symshape.decide.compact`, so that sums
    of floors from size arithmetic (padding to even sizes, strided slices) stay one floor."""
    def run(*args, **kwargs):
        out = rule(*args, **kwargs)
        if isinstance(out, Out):
            return dataclasses.replace(out, shape=_compact_shape(out.shape))
        return _compact_shape(out)
    return run


def _is_torch(fn) -> bool:
    return (getattr(fn, "__module__", "") or "").startswith("torch.")


class _Call(nn.Module):
    """``fn`` with its non-tensor arguments fixed: forward takes the tensors only, so fx can trace it."""

    def __init__(self, fn, signature, arguments: dict, tensor_names: list):
        super().__init__()
        self.fn, self.signature, self.arguments, self.tensor_names = fn, signature, arguments, tensor_names

    def forward(self, *tensors):
        arguments = dict(self.arguments)
        arguments.update({n: tensors[i] for i, n in enumerate(self.tensor_names)})  # a Proxy is indexed, not iterated
        bound = inspect.BoundArguments(self.signature, arguments)
        return self.fn(*bound.args, **bound.kwargs)


def _run_wrapped(tracer, fn, args, kw, name, names):
    """A plain Python function that fx kept as a call (``torch.fx.wrap``): trace the function itself,
    with its tensor arguments as inputs and the others as constants, and interpret that graph."""
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kw)
    except TypeError as err:
        raise ShapeError(f"cannot bind the arguments of {fn.__name__}: {err}") from None
    tensor_names = [k for k, v in bound.arguments.items() if isinstance(v, Shape)]
    others = {k: v for k, v in bound.arguments.items() if k not in tensor_names}
    hint = f"register a rule for it with @symshape.register({fn.__name__})"
    if _any(list(others.values()), lambda v: isinstance(v, Shape)):
        raise ShapeError(f"{fn.__name__} takes tensors inside containers; {hint}")
    if _any(list(others.values()), _is_symbolic):
        raise ShapeError(f"{fn.__name__} takes symbolic sizes as plain arguments; {hint}")
    call = _Call(fn, signature, {k: _concrete(v) for k, v in others.items()}, tensor_names)
    try:
        graph = GraphTracer().trace(call)
    except Exception as err:  # control flow on sizes inside the function
        frame = _user_frame(err.__traceback__)
        at = f" at {os.path.basename(frame.filename)}:{frame.lineno}: `{frame.line}`" if frame else ""
        raise tracer.fail(name, fn.__name__, tuple(bound.arguments[k] for k in tensor_names),
                          f"torch.fx cannot trace the function {fn.__name__}{at}: {str(err).splitlines()[0]}; "
                          f"{hint} (a function of the call's arguments, tensors given as shapes)") from None
    return interpret(tracer, call, graph, name, tuple(bound.arguments[k] for k in tensor_names), {}, names)
