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

import dis
import inspect
import operator
import os
import sys
import re
import traceback
from typing import Optional

import sympy
import torch
import torch.fx as fx
import torch.nn as nn

from .forms import compact
from .fallback import FALLBACK, eligible, meta_rule, runnable
from .printing import fmt
from .report import Shape
from .frontends import (FX_LOCK, _SIZE_FNS, _Opaque, _any, _concrete, _is_symbolic, _tensor_attr, _tensor_method_value, _tensors, size_op, compacting,
                        qualify, walked)
from .rules.registry import rule_for
from .symbols import BothBranches, ShapeError

__all__ = ["run_graph", "fx_graph", "GraphTracer"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)




class GraphTracer(fx.Tracer):
    """An fx tracer whose leaves are the modules symshape has a rule for, plus built-in torch.nn
    modules without one (so that their missing rule is reported by name, not traced into).
    Tracing is serialised across threads (see ``FX_LOCK``)."""

    def trace(self, root, concrete_args=None):
        self.calls = []  # (path, args, kwargs, output, first node, stop node) per inlined module call
        with FX_LOCK:
            graph = super().trace(root, concrete_args)
        graph.symshape_calls = [(path, _nodes(args), _nodes(kwargs), _nodes(out), first, stop)
                                for path, args, kwargs, out, first, stop in self.calls]
        return graph

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        """A parameter read in a forward traced through: its node, found by identity in a table of
        the root's parameters made once per trace (fx searches ``named_parameters()`` at every read:
        69,000 reads of a model with 2,000 parameters in timm's mobilenetv5, 0.2 s)."""
        if not isinstance(attr_val, nn.Parameter) or self.param_shapes_constant:
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        known = getattr(self, "_parameter_names", None)
        if known is None or known[0] is not self.root:
            known = self._parameter_names = (self.root, {id(p): n for n, p in self.root.named_parameters()})
        name = known[1].get(id(attr_val))
        if name is None:
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        if name not in parameter_proxy_cache:
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]

    def call_module(self, m, forward, args, kwargs):
        """Record each call of a module that is traced through (not a leaf): its arguments, its
        output and the span of graph nodes it made, so that it gets a record of its own."""
        path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            return super().call_module(m, forward, args, kwargs)
        first = len(self.graph.nodes)
        out = super().call_module(m, forward, args, kwargs)
        self.calls.append((path, args, kwargs, out, first, len(self.graph.nodes)))
        return out

    def create_proxy(self, kind, target, args, kwargs, *rest, **more):
        """Also mark an ``x += y`` (and -=, *=, /=): fx's proxies have no in-place operators, so Python
        runs it as ``x = x + y`` and the graph cannot tell; torch writes into x, whose dims do not
        stretch. The Python instruction that made the call says which it was."""
        proxy = super().create_proxy(kind, target, args, kwargs, *rest, **more)
        if kind == "call_function" and target in _IN_PLACE and _augmented_assignment():
            proxy.node.meta["symshape_in_place"] = True
        return proxy

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if rule_for(m) is not None:
            return True
        if isinstance(m, _CONTAINERS):
            return False
        return not walked(m)


_IN_PLACE = {operator.add: operator.iadd, operator.sub: operator.isub, operator.mul: operator.imul,
             operator.truediv: operator.itruediv}
_INSTRUCTIONS: dict = {}  # code object -> {offset: instruction}


def _augmented_assignment() -> bool:
    """Whether the user's Python instruction running now is an augmented assignment (``+=``)."""
    frame = sys._getframe(2)
    fx_dir = os.path.dirname(os.path.abspath(fx.__file__))
    here = os.path.dirname(os.path.abspath(__file__))
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith((fx_dir, here)):
        frame = frame.f_back
    if frame is None:
        return False
    code = frame.f_code
    if code not in _INSTRUCTIONS:
        _INSTRUCTIONS[code] = {i.offset: i for i in dis.get_instructions(code)}
    ins = _INSTRUCTIONS[code].get(frame.f_lasti)
    if ins is None:
        return False
    return ins.opname.startswith("INPLACE_") or (ins.opname == "BINARY_OP" and ins.argrepr.endswith("="))


def _nodes(value):
    """*value* (proxies inside tuples, lists and dicts) with each proxy replaced by its node."""
    return fx.node.map_aggregate(value, lambda v: v.node if isinstance(v, fx.Proxy) else v)


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
        what = f"the forward of layer {qualify(name, inner[0])!r} ({kind}) inside it" if inner else "its forward"
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
        base = qualify(qualify(prefix, owner), _op_name(node).strip("_") or "op")
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
    except ShapeError:  # Python control flow on sizes: run the forward itself on stand-ins
        from .execute import run_forward

        return run_forward(tracer, module, name, inputs, kwargs)
    return interpret(tracer, module, graph, name, inputs, kwargs or {})


def interpret(tracer, module, graph: fx.Graph, name: str, inputs: tuple, kwargs: dict, names=None):
    """Run *graph* (traced from *module*) on symbolic *inputs*."""
    names = names or _Names()
    env: dict = {}
    pending = list(inputs)
    kind = type(module).__name__ if isinstance(module, nn.Module) else getattr(module, "__name__", "function")
    made = []  # the number of layers recorded before each node
    for node in graph.nodes:
        made.append(len(tracer.layers))
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
            _record_calls(tracer, module, graph, name, env, made)
            return fx.node.map_arg(node.args[0], lambda n: env[n])
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kw = dict(fx.node.map_arg(node.kwargs, lambda n: env[n]))
        if node.op == "get_attr":
            value = _fetch_attr(module, node.target)
            env[node] = Shape(tuple(value.shape)) if isinstance(value, torch.Tensor) else value
        elif node.op == "call_module":
            sub = module.get_submodule(node.target)
            env[node] = tracer.run_module(sub, qualify(name, node.target), tuple(args), kw or None)
        else:  # call_function, call_method
            if node.target is torch._assert and len(args) > 1 and "Proxy(" in str(args[1]):
                args = (args[0], _message(str(args[1]), env)) + tuple(args[2:])
            env[node] = _call(tracer, node, node.target, args, kw, name, names)
    raise ShapeError(f"the graph of {kind} has no output")


def _message(text: str, env: dict) -> str:
    """An assert's message that fx formatted with its proxies (timm's ``f"Input height ({H}) doesn't
    match"`` reads ``Proxy(getitem_2)``), with each proxy's symbolic size written in."""
    values = {n.name: v for n, v in env.items()}

    def size(m):
        v = values.get(m.group(1))
        return fmt(v) if isinstance(v, (int, sympy.Expr)) else m.group(0)
    return re.sub(r"Proxy\((\w+)\)", size, text)


def _record_calls(tracer, module, graph, name: str, env: dict, made: list) -> None:
    """A :class:`~symshape.report.ModuleCall` for each module call that fx traced through, with
    the shapes that went in and came out and the layers it made (in the order the calls began)."""
    def value(v):
        return fx.node.map_aggregate(v, lambda n: env.get(n) if isinstance(n, fx.Node) else n)

    for path, args, kwargs, out, first, stop in sorted(getattr(graph, "symshape_calls", ()), key=lambda c: c[4]):
        tracer.record_call(qualify(name, path), module.get_submodule(path), (value(args), value(kwargs)), value(out),
                           made[first] if first < len(made) else len(tracer.layers),
                           made[stop] if stop < len(made) else len(tracer.layers))


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
            if rule is None and inspect.isfunction(target) and not _is_torch(target):
                try:  # fx.wrap'ed: sizes in, a value out; run as written
                    return _run_executed(tracer, target, args, kw, names(prefix, node))
                except BothBranches:
                    raise
                except ShapeError:  # float() of a size, say: on torch's meta kernels if it is sizes only
                    if not runnable(target):
                        raise
            if rule is None and runnable(target):  # a helper of sizes only: its body on torch's meta kernels
                return tracer.apply(names(prefix, node), _op_name(node), meta_rule(target), None, tuple(args), kw,
                                    attrs={**FALLBACK, "function": function_name(target)}, shown=())
            if rule is None and not eligible(target):
                raise ShapeError(f"no rule for {_op_name(node)} on symbolic sizes {args}; register one with "
                                 f"@symshape.register({_op_name(node)})")
        else:
            rule = rule_for(target)
            if rule is None:  # constants: run the function itself (math.sqrt(64), torch.Size(...), ...)
                return target(*[_concrete(a) for a in args], **{k: _concrete(v) for k, v in kw.items()})
    if node.meta.get("symshape_in_place"):
        target = _IN_PLACE[target]
    rule = rule_for(target)
    op_name = _op_name(node)
    kind = f"Tensor.{target}" if is_method else op_name
    attrs = {}
    if rule is None:
        if not is_method and inspect.isfunction(target) and not _is_torch(target):
            return _run_wrapped(tracer, target, args, kw, names(prefix, node), names)
        if eligible(target, is_method):  # torch's meta kernel on symbolic sizes stands in
            rule, attrs = meta_rule(target, is_method), dict(FALLBACK)
    if rule is None:
        raise ShapeError(
            f"no shape rule for {'the method ' if is_method else ''}{kind} (graph node {node.name!r} in "
            f"{prefix or 'the model'!r}) on inputs {', '.join(str(s) for s in tensors)}; register one with "
            f"@symshape.register({repr(target) if is_method else op_name}) (a function of the call's arguments, "
            f"tensors given as shapes, returning the output shape)"
        )
    inplace = kw.get("inplace") is True or target in _INPLACE_OPERATORS or str(
        target if is_method else op_name).endswith("_") and not str(target).endswith("__")
    if inplace:
        attrs["inplace"] = True
    if not is_method:
        attrs["function"] = function_name(target)
    return tracer.apply(names(prefix, node), kind, compacting(rule), None, tuple(args), kw, attrs=attrs,
                        shown=tuple(tensors))


def function_name(fn) -> str:
    """Where a called function lives, for counters that tell ``a @ b`` from ``torch.matmul`` and
    ``F.relu`` from ``torch.relu``: ``operator.matmul``, ``torch.matmul``, ``F.relu``.

    >>> import operator, torch, torch.nn.functional as F
    >>> [function_name(f) for f in (operator.matmul, torch.matmul, F.relu, torch.relu, F.gelu)]
    ['operator.matmul', 'torch.matmul', 'F.relu', 'torch.relu', 'F.gelu']
    """
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", None) or str(fn)
    if module == "_operator":
        return f"operator.{name}"
    if module in ("torch.nn.functional", "torch._C._nn"):
        return f"F.{name}"
    if module == "torch" or module.startswith("torch."):
        return f"torch.{name}"
    return f"{module}.{name}" if module else name


#: Python's augmented assignments (``x += y``): they write into their left operand.
_INPLACE_OPERATORS = {getattr(operator, n) for n in (
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior", "ixor", "ilshift", "irshift")}



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
    if _any(list(others.values()), _is_symbolic):  # sizes as plain arguments: run the function itself
        return _run_executed(tracer, fn, args, kw, name)
    call = _Call(fn, signature, {k: _concrete(v) for k, v in others.items()}, tensor_names)
    try:
        graph = GraphTracer().trace(call)
    except Exception:  # control flow on sizes inside the function: run it as written
        return _run_executed(tracer, fn, args, kw, name)
    return interpret(tracer, call, graph, name, tuple(bound.arguments[k] for k in tensor_names), {}, names)


class _Apply(nn.Module):
    """``fn(*args, **kwargs)`` as a module, so that the executor can run a plain function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def explore_key(self):
        """What the paths of a call depend on besides its arguments: the function (explore.py)."""
        return self.fn


def _run_executed(tracer, fn, args, kw, name):
    """A plain Python function that fx kept as a call (``torch.fx.wrap``) and that takes symbolic
    sizes (timm's ``_build_grid(feat_shape)``): run it as written on stand-ins (see execute.py),
    its layers named under *name*."""
    from .execute import run_forward

    def plain(v):  # a device or dtype the graph carries but does not model: torch's default
        if isinstance(v, _Opaque):
            return None
        if isinstance(v, (list, tuple)) and not isinstance(v, Shape):
            return type(v)(plain(x) for x in v) if type(v) in (list, tuple) else v
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    apply = type(fn.__name__, (_Apply,), {"__module__": getattr(fn, "__module__", __name__)})(fn)
    saved = tracer.state()
    try:
        return run_forward(tracer, apply, name, plain(tuple(args)), plain(dict(kw)))
    except ShapeError:  # leave the trace as it was, for the caller's other way
        tracer.restore(saved)
        raise
