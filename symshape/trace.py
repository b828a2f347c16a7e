"""Walking a model and applying the rules: module -> trace (rules) -> report.

The walker is a small interpreter over ops: :meth:`Tracer.apply` runs one rule on shapes, checks
its requirements and records a :class:`~symshape.report.Layer`; :meth:`Tracer.run_module` walks
containers. A graph front end (torch.fx) feeds the same ``apply``.
"""
from __future__ import annotations

import functools
import inspect
import itertools
from dataclasses import replace
from typing import Iterable, Optional

import sympy
import torch
import torch.nn as nn

from . import rules as _rules  # noqa: F401  (registers the built-in rules)
from .forms import compact
from .facts import facts, pinned_args, simplified
from .floors import finest_floor, simplify_relation
from .frontends import FX_LOCK, _tensors, global_hooks_refusal as _global_hooks, unsupported as _unsupported, walked
from .memo import fresh, memo_tag, rule_key
from .modelstate import itemsize, unchanged
from .report import Condition, Layer, ModuleCall, Outputs, Report, Shape, as_output, output_record
from .rules.common import fmt_shape, fmt_size
from .rules.registry import Out, rule_for
from .pieces import split_into_pieces
from .symbols import BothBranches, ShapeError, parse_shape

__all__ = ["trace", "Tracer"]


def _describe(shapes) -> str:
    return ", ".join(fmt_shape(s) if isinstance(s, tuple) else repr(s) for s in shapes)


class Tracer:
    """Accumulates layers and domain conditions while shapes flow through rules."""

    def __init__(self, memo: Optional[dict] = None):
        self.memo = {} if memo is None else memo  # rule call -> its result, for one trace (memo.py)
        self.layers: list = []
        self.modules: list = []  # ModuleCall records of the modules walked rather than ruled
        self.domain: list = []
        self._calls: dict = {}  # qualified name -> how many times it was called so far
        self._seen: set = set()
        self._facts: tuple = (-1, None)  # (len(domain), facts(domain)), recomputed as the domain grows
        self._producers: dict = {}  # id(shape) -> (shape, index of the layer that made it; -1: the input)
        self._params: dict = {}  # id(module) -> (module, its parameter count): counted once per trace
        self._hyper: dict = {}  # id(module) -> (module, hyper_parameters(module))
        self.splits: list = []  # the branches whose other side runs too (symbols.Split), in order
        self.terse = False  # while a module call's paths are traced: failures' messages go unread

    def param_count(self, module: nn.Module) -> int:
        """The number of parameters of *module* (its submodules' included), counted once per trace
        and outside the executing front end's torch function mode (through which every
        ``numel()`` of a weight would otherwise go)."""
        known = self._params.get(id(module))
        if known is None or known[0] is not module:
            with torch._C.DisableTorchFunction():
                known = self._params[id(module)] = (module, sum(p.numel() for p in module.parameters()))
        return known[1]

    def facts(self):
        """The :class:`~symshape.facts.DomainFacts` of the domain collected so far (shared by every
        run of the forward that reaches the same domain)."""
        if self._facts[0] != len(self.domain):
            self._facts = (len(self.domain), facts(tuple(c.expr for c in self.domain)))
        return self._facts[1]

    def domain_changed(self) -> None:
        """Forget the facts of the domain (its list was cut back or replaced)."""
        self._facts = (-1, None)

    def lows(self) -> dict:
        """The lowest size of each symbol that the domain collected so far allows: its bounds
        (:func:`~symshape.decide.lower_bounds`), raised to the first size that meets every
        condition on that symbol alone (a size that must be a multiple of a window is at least the
        window)."""
        return self.facts().lows()

    def highs(self) -> dict:
        """The highest size of each symbol that the domain bounds above (a piece: ``W <= 12``)."""
        return self.facts().highs()

    def pins(self) -> dict:
        """What the domain collected so far fixes, to put in every later formula: each size it
        fixes to one value (``H = 224``: a model that asserts its input size), as ``{symbol:
        value}``, and each floor that an equation in one size gives in coarser floors
        (:func:`~symshape.floors.finest_floor`: a window partition's multiple of the window)."""
        return self.facts().pins()

    def simplify(self, value):
        """A size, relation or shape (or several) with what the domain fixes put in (:meth:`pins`),
        and Max/Min and disjunctions decided by the domain's lower bounds
        (:func:`~symshape.decide.under_bounds`): the formulas hold only inside the domain, so what
        the domain decides is replaced."""
        return simplified(value, self.facts())

    def _pin_args(self, value):
        """*value* (a rule's arguments: shapes, sizes, and tuples, lists and dicts of them) with
        :meth:`pins` put in; what does not change stays the same object."""
        known = self.facts()
        return pinned_args(value, known, known.pinned())

    def _pins_new_floor(self, rel) -> bool:
        """Whether *rel* fixes a floor that :meth:`pins` does not put in yet (kept in the domain
        although implied: ``floor(5·floor((H + 3)/20)/2) = 5·floor((H + 3)/40)`` then cancels)."""
        found = finest_floor(rel)
        return found is not None and found[0] not in self.pins()

    def state(self) -> tuple:
        """What the trace has collected so far (layers, domain, module calls), to go back to with
        :meth:`restore` when a forward is run again along another path."""
        return (list(self.layers), list(self.domain), set(self._seen), list(self.modules), dict(self._calls),
                list(self.splits))

    def restore(self, state: tuple) -> None:
        self.layers[:], self.domain[:], self._seen = list(state[0]), list(state[1]), set(state[2])
        self.modules[:], self._calls, self.splits[:] = list(state[3]), dict(state[4]), list(state[5])
        self.domain_changed()

    def produced(self, value, index: int) -> None:
        """Remember that layer *index* (-1: the model's input) produced *value* (a shape or outputs)."""
        self._producers[id(value)] = (value, index)
        if isinstance(value, Outputs):
            for v in value:
                if v is not None:
                    self._producers[id(v)] = (v, index)

    def producer(self, value):
        """The index of the layer that produced *value*, -1 for the input, None if unknown."""
        known = self._producers.get(id(value))
        return known[1] if known is not None and known[0] is value else None

    def fail(self, name: str, kind: str, inputs, message: str) -> ShapeError:
        where = f"layer {name!r} ({kind})" if name else f"the model ({kind})"
        return ShapeError(f"{where} got input {_describe(inputs)}: {message}")

    def never(self, name: str, kind: str, inputs, message: str) -> ShapeError:
        """:meth:`fail` for a condition that no size (in the domain) meets, marked ``empty_domain``:
        the path traced runs at no size (the executing front end then tries its last branch's other side)."""
        err = self.fail(name, kind, inputs, message)
        err.empty_domain = err.nowhere = True
        return err

    def require(self, name: str, kind: str, inputs, expr, why: str) -> None:
        """Keep ``expr`` in the domain; raise where it can never hold."""
        raw = sympy.sympify(expr, strict=True)
        memo = self.facts().required  # the verdict on a condition depends on the domain only
        verdict = memo.get(raw, _UNKNOWN)
        if verdict is _UNKNOWN:
            verdict = self._verdict(name, kind, inputs, raw, why)
            if verdict is not _SEEN:
                memo[raw] = verdict
        if verdict is None or verdict is _SEEN or verdict in self._seen:
            return
        self._seen.add(verdict)
        self.domain.append(Condition(verdict, name, kind, why))

    def _verdict(self, name: str, kind: str, inputs, expr, why: str):
        """What :meth:`require` does with *expr* under the domain so far: None (it holds there),
        _SEEN (the domain has it), the condition to add, or a ShapeError raised (never holds)."""
        given = self.simplify(expr)
        if isinstance(given, (sympy.GreaterThan, sympy.LessThan, sympy.Equality)) and any(
                f.args[0].has(sympy.floor) for f in given.atoms(sympy.floor)):
            given = given.func(compact(given.lhs - given.rhs), 0)  # floors of floors (TF 'same' padding)
        expr = simplify_relation(given)
        if expr is sympy.true:
            return
        if expr is sympy.false:
            raise self.never(name, kind, inputs, f"needs {why}, which fails for every input size{_never(given)}")
        if expr in self._seen:
            return _SEEN
        if isinstance(expr, sympy.Equality):
            from .solve.conditions import factor_equations  # the solver's core: relations on sizes, no report

            pairs = factor_equations(expr, self.lows())
            if pairs:  # a product of sizes equal to a product each of whose factors it bounds: factor by factor
                for a, b in pairs:
                    self.require(name, kind, inputs, sympy.Eq(a, b), why)
                return _SEEN  # not kept as the verdict: going back to this domain must add the factors again
        never = _never(given)
        if never:
            raise self.never(name, kind, inputs, f"needs {why}, which fails for every input size{never}")
        if isinstance(expr, (sympy.GreaterThan, sympy.LessThan)) and (
                expr.has(sympy.Max, sympy.Min) or len(expr.free_symbols) > 1
                or any(f.args[0].has(sympy.floor) for f in expr.atoms(sympy.floor))):
            # nested floors (TF-style 'same' padding computed from the size), a Max (a size padded up
            # to a minimum) or a product of sizes (BatchNorm's more than one value per channel) that
            # simplify_relation leaves: dropped where they hold for every size
            from .decide import always_nonnegative

            big, small = (expr.lhs, expr.rhs) if isinstance(expr, sympy.GreaterThan) else (expr.rhs, expr.lhs)
            if always_nonnegative(big - small):
                return
        if len(expr.free_symbols) == 1 and isinstance(expr, (sympy.Equality, sympy.Unequality)):
            from .asymptotics import implied_periodically  # e.g. a cat after a branch on the parity of a size

            implied = implied_periodically(expr, [c.expr for c in self.domain])
            if implied and not self._pins_new_floor(expr):
                return
        else:
            implied = False
        if not implied and _decided_by_solving(expr) and expr.free_symbols:  # e.g. a Linear's in_features
            from .solve.solver import feasible  # the solver's core: relations on sizes, no report

            reason = feasible(expr, [c.expr for c in self.domain], why=not self.terse)
            if reason is not None:
                raise self.never(name, kind, inputs, f"needs {why}, which fails for every input size: {reason}")
        return expr

    def record_call(self, name: str, module: nn.Module, inputs, out, first: int, stop: Optional[int] = None) -> None:
        """Record one call of a module that was walked rather than ruled (a
        :class:`~symshape.report.ModuleCall`): the tensor shapes among *inputs*, what it returned,
        its parameters and the layers ``first:stop`` it made (``stop``: the layers so far)."""
        self.modules.append(ModuleCall(self.call_name(name), type(module).__name__, tuple(_tensors(inputs)),
                                       output_record(out), self.param_count(module), first,
                                       len(self.layers) if stop is None else stop))

    def call_name(self, name: str) -> str:
        """*name* for its first call, ``name#2`` for the second, and so on: one record per call."""
        n = self._calls[name] = self._calls.get(name, 0) + 1
        return name if n == 1 else f"{name}#{n}"

    def apply(self, name: str, kind: str, rule, op, inputs: tuple, kwargs: Optional[dict] = None,
              params: int = 0, attrs: Optional[dict] = None, shown: Optional[tuple] = None):
        """Run one rule and record the layer. ``op`` is the module (or None for functions).
        ``shown``: the inputs to record and name in errors, when not all of ``inputs`` are tensors
        (a function call's sizes, dims and flags)."""
        name = self.call_name(name)
        sources = tuple(self.producer(s) for s in (inputs if shown is None else shown))
        if self.pins():  # inputs made before a condition that fixes a floor: in the later form, so products cancel
            inputs, kwargs = self._pin_args(inputs), self._pin_args(kwargs)
            shown = None if shown is None else self._pin_args(shown)
        tag = memo_tag(rule) if self.memo is not None else None
        key = rule_key(tag, op, inputs, kwargs) if tag is not None else None
        try:
            result = fresh(self.memo[key]) if key is not None and key in self.memo else None
            if result is None:
                result = rule(op, *inputs, **(kwargs or {})) if op is not None else rule(*inputs, **(kwargs or {}))
                if key is not None:
                    self.memo[key] = result
        except ShapeError as err:
            raise self.fail(name, kind, inputs if shown is None else shown, str(err)) from None
        except Exception as err:  # a rule that broke on arguments it did not expect: named, never raw
            raise self.fail(name, kind, inputs if shown is None else shown,
                            f"its shape rule failed with {type(err).__name__}: {err}; register a rule that handles "
                            f"this call with @symshape.register, or report it") from err
        flags = call_flags(rule, ((op,) if op is not None else ()) + tuple(inputs), kwargs)
        inputs = inputs if shown is None else shown
        out = result if isinstance(result, Out) else Out(result)
        for expr, why in out.requires:
            try:
                self.require(name, kind, inputs, expr, why)
            except ShapeError as err:
                err.by_rule = True  # a shape rule's condition, not one the model states itself
                raise
        shape = as_output(self.simplify(out.shape))
        if any(shape is s for s in inputs):  # a fresh object, so that each edge has one producer
            shape = Shape(shape) if isinstance(shape, Shape) else Outputs(tuple(shape))
        try:
            macs = sympy.sympify(out.macs, strict=True)  # strict: a string is refused, never evaluated
        except sympy.SympifyError:
            raise self.fail(name, kind, inputs, f"its rule returned MACs {out.macs!r}: return an int or a sympy "
                                                "expression of the sizes") from None
        attrs = {**(attrs or {}), **flags}
        self.layers.append(Layer(name, kind, tuple(as_output(s) if isinstance(s, tuple) else s for s in inputs),
                                 shape, params, macs, attrs, tuple(out.windows), sources))
        self.produced(shape, len(self.layers) - 1)
        return shape

    def run_module(self, module: nn.Module, name: str, inputs: tuple, kwargs: Optional[dict] = None):
        """Apply the module's rule, or walk it when it is a container."""
        kind = type(module).__name__
        refusal = _unsupported(module)
        if refusal:
            raise self.fail(name, kind, inputs, refusal)
        rule = rule_for(module)
        if rule is not None:
            params = self.param_count(module)
            known = self._hyper.get(id(module))
            if known is None or known[0] is not module:  # read once per trace (apply copies them)
                known = self._hyper[id(module)] = (module, hyper_parameters(module))
            return self.apply(name, kind, rule, module, inputs, kwargs, params, known[1])
        children = _chain(module)
        if children is not None:
            if len(inputs) != 1:
                raise self.fail(name, kind, inputs, "a chain of modules takes one input")

            def walk(x):
                for child_name, child in children:
                    x = self.run_module(child, f"{name}.{child_name}" if name else child_name, (x,))
                return x
        elif walked(module):
            from .graph import run_graph  # any other module: its forward as a torch.fx graph

            def walk(_):
                return run_graph(self, module, name, inputs, kwargs)
        else:
            walk = None
        if walk is not None:
            first = len(self.layers)
            out = walk(inputs[0] if inputs else None)
            self.record_call(name, module, inputs, out, first)
            return out
        raise self.fail(
            name, kind, inputs,
            f"no shape rule for {kind} and it is not a plain chain of its children; "
            f"register one with @symshape.register({kind}) (a function (module, x) -> output shape)"
        )


_UNKNOWN = object()  # no verdict kept yet (require)
_SEEN = object()  # a condition the domain has: a verdict that depends on the domain's list, never kept


def _decided_by_solving(expr) -> bool:
    """Whether the solver answers *expr* exactly and fast, so a condition that no size satisfies is
    refused at trace time: an equation, or a disjunction of equations in one symbol or of one
    expression against different values (broadcasting a fixed size against a symbolic one)."""
    if isinstance(expr, sympy.Equality):
        return True
    if not (isinstance(expr, sympy.Or) and all(isinstance(a, sympy.Equality) for a in expr.args)):
        return False
    if len(expr.free_symbols) == 1:
        return True
    diffs = [a.lhs - a.rhs for a in expr.args]
    return all((a - b).is_number and a != b for a, b in itertools.combinations(diffs, 2))


def _never(rel) -> str:
    """Why an equation ``c·(product of sizes) = v`` has no solution, when c does not divide v."""
    if isinstance(rel, sympy.Equality):
        for a, b in ((rel.lhs, rel.rhs), (rel.rhs, rel.lhs)):
            if b.is_Integer and not a.is_number:
                c, _ = a.as_content_primitive()  # the integer common to every term (factor_terms: slow on long sums)
                if c.is_Integer and c > 1 and int(b) % int(c):
                    return f": {b} is not a multiple of {c}, the factor common to every value of {fmt_size(a)}"
    return ""


#: The public hyper-parameters copied into Layer.attrs, for renderers that explain a layer.
HYPER_PARAMETERS = ("in_channels", "out_channels", "in_features", "out_features", "kernel_size", "stride", "padding",
                    "dilation", "groups", "ceil_mode", "output_padding", "scale_factor", "output_size", "size",
                    "padding_mode", "start_dim", "end_dim", "transposed", "inplace", "p", "normalized_shape",
                    "num_groups", "output_ratio", "track_running_stats", "embed_dim", "num_heads", "batch_first",
                    "dropout", "add_zero_attn", "mode", "dim")

#: Keyword arguments of a call recorded in Layer.attrs (what an attention saves depends on them):
#: plain values as they are, a tensor as True (given), None left out.
CALL_FLAGS = ("attn_mask", "key_padding_mask", "is_causal", "dropout_p", "need_weights", "average_attn_weights",
              "enable_gqa")


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) or v is None for v in value):
        return tuple(value)
    return _SKIP


_SKIP = object()


def hyper_parameters(module: nn.Module) -> dict:
    """The module's public hyper-parameters among :data:`HYPER_PARAMETERS`, as ints, floats,
    strings, bools, None or tuples of them (others are left out).

    >>> hyper_parameters(nn.Conv2d(3, 32, kernel_size=7, stride=2))["stride"]
    (2, 2)
    >>> hyper_parameters(nn.MaxPool2d(2))
    {'kernel_size': 2, 'stride': 2, 'padding': 0, 'dilation': 1, 'ceil_mode': False}
    """
    attrs = {}
    for key in HYPER_PARAMETERS:
        if hasattr(module, key):
            value = _plain(getattr(module, key))
            if value is not _SKIP:
                attrs[key] = value
    if isinstance(module, nn.MultiheadAttention):  # what its forward allocates and saves depends on these
        attrs.update(bias=module.in_proj_bias is not None, bias_kv=module.bias_k is not None,
                     same_embed_dim=bool(module._qkv_same_embed_dim))
    return attrs


@functools.lru_cache(maxsize=None)
def _cached_signature(rule):
    return inspect.signature(rule)


def _signature(rule):
    """The rule's signature (cached for hashable rules), or None when it has none."""
    try:
        return _cached_signature(rule)
    except TypeError:  # an unhashable callable, or one without a signature
        try:
            return inspect.signature(rule)
        except (TypeError, ValueError):
            return None
    except ValueError:
        return None


def call_flags(rule, args: tuple, kwargs) -> dict:
    """The :data:`CALL_FLAGS` among a call's arguments (bound to the rule's signature, so that a
    flag given by position counts too), as plain data.

    >>> from symshape.rules.attention import scaled_dot_product_attention as sdpa
    >>> call_flags(sdpa, ((1, 4, 8), (1, 4, 8), (1, 4, 8), None, 0.1), {"is_causal": True})
    {'is_causal': True, 'dropout_p': 0.1}
    """
    rule = getattr(rule, "__wrapped__", rule)
    arguments = dict(kwargs or {})
    sig = _signature(rule)
    sig = sig if sig is not None and any(k in CALL_FLAGS for k in sig.parameters) else None
    if sig is not None:
        try:
            arguments = sig.bind_partial(*args, **(kwargs or {})).arguments
        except TypeError:
            pass
    flags = {}
    for key in CALL_FLAGS:
        value = arguments.get(key)
        if value is not None:
            flags[key] = value if isinstance(value, (bool, int, float)) else True
    return flags


def _chain(module: nn.Module) -> Optional[Iterable]:
    """The children to run in order, for containers whose forward is a plain chain."""
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        # every entry, as Sequential.forward runs them: named_children() skips a module that is
        # repeated (nn.Sequential(conv, pool, conv2, pool) runs pool twice)
        return [(key, child) for key, child in module._modules.items() if child is not None]
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)) and type(module).forward is nn.Module.forward:
        return list(module.named_children())  # a subclass with its own forward is traced as written
    return None


def _symbols_in_order(shape) -> tuple:
    seen = []
    for dim in shape:
        for s in sorted(dim.free_symbols, key=lambda s: s.name):
            if s not in seen:
                seen.append(s)
    return tuple(seen)


def trace(model: nn.Module, input_shape) -> Report:
    """Trace *model* on an input of the given symbolic shape and return the :class:`Report`.

    *input_shape* mixes ints, names and sympy symbols, or is a string spec such as "1,3,H,W".

    >>> import torch.nn as nn
    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> model = nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(inplace=True), nn.Flatten())
    >>> rep = trace(model, (1, 3, H, W))
    >>> rep.output_shape
    (1, 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1))
    >>> rep.at(H=32, W=32).output_shape
    (1, 5408)
    >>> rep.domain
    (H >= 7, W >= 7)
    >>> print(rep.domain[0])
    H >= 7  [layer '0' (Conv2d): output size >= 1: the padded input must cover the kernel extent 7]
    """
    if not isinstance(model, nn.Module):
        raise ShapeError(f"trace() needs a torch.nn.Module, got {type(model).__name__}")
    shape = Shape(parse_shape(input_shape))
    if not shape:
        raise ShapeError("the input shape is empty; give one such as '1,3,H,W'")
    pieces = split_into_pieces(_trace_piece, model, shape)
    return pieces[0] if len(pieces) == 1 else replace(pieces[0], pieces=tuple(pieces))


def _trace_piece(model: nn.Module, shape: Shape, assumed: tuple, memo: Optional[dict] = None) -> Report:
    """One trace of *model*, with the branch conditions *assumed* in its domain first."""
    tracer = Tracer(memo)
    kind = type(model).__name__
    refusal = _global_hooks()
    if refusal:
        raise tracer.fail("", kind, (shape,), refusal)
    for i, d in enumerate(shape):  # a size is never negative (rules ask for >= 1 where torch does)
        tracer.require("", kind, (shape,), sympy.Ge(d, 0), f"dim {i} of the input is a size, >= 0")
    tracer.produced(shape, -1)
    for cond in assumed:  # the branches this piece takes: decided before the forward asks
        tracer._seen.add(cond.expr)
        tracer.domain.append(cond)
    try:
        with FX_LOCK, unchanged(model):
            out = tracer.run_module(model, "", (shape,))
    except ShapeError:
        if tracer.splits:  # the path of the sides taken fails further on: each side is traced on its own
            raise BothBranches(tracer.splits[0].message, tracer.splits) from None
        raise
    params = sum(p.numel() for p in model.parameters())
    try:
        if isinstance(out, (str, bytes)) or (isinstance(out, (tuple, list)) and any(
                isinstance(d, (str, bytes, float, bool)) for d in out)):
            raise TypeError(out)  # a shape is a tuple of sizes; text or numbers are not one
        output = as_output(out)
    except (TypeError, ValueError):  # the forward returned a number, a string, ...: no shape to report
        raise tracer.fail("", kind, (shape,), f"the forward returned {type(out).__name__} {out!r:.60}, not a tensor "
                                              "(or a tuple, list or dict of tensors); return the tensor") from None
    report = Report(
        model=type(model).__name__,
        input_shape=shape,
        layers=tuple(tracer.layers),
        output_shape=output,
        params=params,
        domain=tuple(tracer.domain),
        symbols=_symbols_in_order(shape),
        modules=tuple(tracer.modules),
        itemsize=itemsize(model),
        frozen=sum(p.numel() for p in model.parameters() if not p.requires_grad),
        branch=assumed,
    )
    if tracer.splits:  # where a branch's other side runs too, this path is one piece (trace() traces the others)
        raise BothBranches(tracer.splits[0].message, tracer.splits, report)
    return report
