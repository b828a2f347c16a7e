"""Frozen records of a traced model: layers, the domain, totals; evaluation at sizes."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Optional

import operator

import sympy

from .evaluate import substitute
from .forms import factored_sum, scaled
from .printing import fmt
from .symbols import ShapeError, as_size

__all__ = ["Shape", "Outputs", "Condition", "Layer", "ModuleCall", "Report", "report_method"]


def report_method(fn=None, *, name=None):
    """Attach *fn* to :class:`Report` as a method (of its own name, or *name*), and return it
    unchanged; ``@report_method`` or ``@report_method(name="__str__")``.

    Questions (``symshape.solve``) and outputs (``symshape.render``) are free functions of a
    report, in their own modules; they attach themselves here so that ``rep.valid_inputs()`` and
    ``rep.to_latex()`` read naturally while this module imports none of them (data flows one way:
    trace -> report -> render / solve / check). ``symshape/__init__`` loads every such module, on
    the first use of the package or when the first Report is made.
    """
    if fn is None:
        return lambda f: report_method(f, name=name)
    setattr(Report, name or fn.__name__, fn)
    return fn


def _dim(d):
    """One dim as a sympy expression: a name is parsed by hand (never evaluated)."""
    if isinstance(d, str):
        return as_size(d)
    try:
        return sympy.sympify(d, strict=True)
    except sympy.SympifyError:
        raise ShapeError(f"a size must be an int, a name or a sympy expression, got {type(d).__name__} {d!r}") from None


class Shape(tuple):
    """A shape: a tuple of sympy expressions that prints its floors readably.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> Shape((1, 32, floor_div(H - 7, 2) + 1))
    (1, 32, floor((H - 7)/2) + 1)
    >>> Shape((1, 2)) == (1, 2)
    True
    """

    def __new__(cls, dims=()):
        return super().__new__(cls, (_dim(d) for d in dims))

    def __repr__(self) -> str:
        inner = ", ".join(fmt(d) for d in self)
        return f"({inner},)" if len(self) == 1 else f"({inner})"

    __str__ = __repr__

    @property
    def numel(self) -> sympy.Expr:
        """The number of elements: the product of the dims."""
        return sympy.Mul(*self) if self else sympy.Integer(1)

    def subs(self, values, memo: Optional[dict] = None) -> "Shape":
        """The shape with sizes substituted (exactly; *memo* shares work between calls)."""
        memo = {} if memo is None else memo
        return Shape(substitute(d, values, memo) for d in self)


class Outputs(tuple):
    """The outputs of an op that has several (``torch.split``, ``nn.MultiheadAttention``, a model
    that returns a tuple, a list or a dict): a tuple of :class:`Shape`, with ``None`` where an output
    is not a tensor; ``names`` holds a dict's keys (strings, in order), None otherwise.

    >>> outs = Outputs([(1, 3), None, (2, 2)])
    >>> outs, outs.numel, outs.shapes
    (((1, 3), None, (2, 2)), 7, ((1, 3), (2, 2)))
    >>> feats = Outputs({"feat": (1, 8), "logits": [(1, 10), 7]})
    >>> feats, feats.names, feats.shapes
    ({'feat': (1, 8), 'logits': ((1, 10), None)}, ('feat', 'logits'), ((1, 8), (1, 10)))
    """

    names: Optional[tuple] = None

    def __new__(cls, items=(), names=None):
        if isinstance(items, Mapping):
            names, items = tuple(str(k) for k in items), tuple(items.values())
        self = super().__new__(cls, (_output(v) for v in items))
        if names is not None:
            self.names = tuple(names)
            if len(self.names) != len(self):
                raise ShapeError(f"{len(self.names)} names for {len(self)} outputs")
        return self

    @property
    def shapes(self) -> tuple:
        """The tensor outputs, flattened, in order."""
        out = []
        for v in self:
            if isinstance(v, Outputs):
                out.extend(v.shapes)
            elif v is not None:
                out.append(v)
        return tuple(out)

    @property
    def numel(self) -> sympy.Expr:
        """Elements of all tensor outputs."""
        return sympy.Add(*(s.numel for s in self.shapes))

    def items(self) -> tuple:
        """``(label, output)`` pairs: a dict's keys, else the positions ``0, 1, ...`` as strings."""
        return tuple(zip(self.names if self.names is not None else map(str, range(len(self))), self))

    def subs(self, values, memo: Optional[dict] = None) -> "Outputs":
        memo = {} if memo is None else memo
        return Outputs((None if v is None else v.subs(values, memo) for v in self), self.names)

    def __eq__(self, other):
        return tuple.__eq__(self, other) is True and getattr(other, "names", None) == self.names

    def __ne__(self, other):
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        if self.names is not None:
            return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in zip(self.names, self)) + "}"
        inner = ", ".join(repr(v) for v in self)
        return f"({inner},)" if len(self) == 1 else f"({inner})"

    __str__ = __repr__


def _is_nested(value) -> bool:
    """Whether *value* is a collection of outputs (a dict, or a tuple of shapes) rather than one shape."""
    if isinstance(value, Mapping):
        return True
    # A dim is never a tuple: one shape-like item (or only Nones) makes a collection of outputs.
    return isinstance(value, (tuple, list)) and bool(value) and (
        any(isinstance(v, (tuple, list, Mapping)) for v in value) or all(v is None for v in value))


def _output(value):
    """One item of :class:`Outputs`: a shape, nested outputs, or None for what is not a tensor."""
    if value is None or isinstance(value, (Shape, Outputs)):
        return value
    if _is_nested(value):
        return Outputs(value)
    if isinstance(value, (tuple, list)):
        return Shape(value)
    return None  # an int, a string, ... that the model returns beside its tensors


def as_output(value):
    """One output shape as a :class:`Shape`, several (a tuple, a list or a dict) as :class:`Outputs`."""
    if isinstance(value, (Shape, Outputs)):
        return value
    return Outputs(value) if _is_nested(value) else Shape(value)


def output_record(value):
    """What a module call returned, for its record: a :class:`Shape` for a tensor (the front ends
    carry tensors as Shape), :class:`Outputs` for a tuple, list or dict (``None`` for each item that
    is not a tensor: a patch grid's (H, W) is ``(None, None)``, as torch's observation reads it),
    ``None`` for anything else."""
    if isinstance(value, (Shape, Outputs)):
        return value
    if isinstance(value, Mapping):
        return Outputs({k: output_record(v) for k, v in value.items()})
    if isinstance(value, (tuple, list)):
        return Outputs([output_record(v) for v in value])
    return None


def shapes_of(value) -> tuple:
    """The tensor shapes of an output, one or several: ``(shape,)`` or ``outputs.shapes``."""
    if isinstance(value, Outputs):
        return value.shapes
    return () if value is None else (value,)


def _integer(value) -> Optional[int]:
    """*value* as a Python int when it is an integer scalar (int, sympy Integer, NumPy or torch
    integer; not bool), else None."""
    if isinstance(value, bool) or getattr(value, "dtype", None) is not None and "bool" in str(value.dtype):
        return None
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else None
    try:
        return operator.index(value)
    except TypeError:
        return None


def plain(value):
    """A number as a Python int when it is one (so ``f"{rep.at(H=224, W=224).macs:,}"`` works),
    any other expression unchanged."""
    if isinstance(value, sympy.Basic) and value.is_Integer:
        return int(value)
    return value


def _subs(value, values, memo):
    if isinstance(value, (Shape, Outputs)):
        return value.subs(values, memo)
    if isinstance(value, tuple):
        return tuple(_subs(v, values, memo) for v in value)
    if value is None:
        return None
    return substitute(value, values, memo)


@dataclass(frozen=True)
class Condition:
    """One condition of the domain: ``expr`` (a sympy relation on the input sizes) must hold for
    the layer ``layer`` (qualified name) of type ``kind`` to run; ``reason`` says what it means."""

    expr: sympy.Basic
    layer: str
    kind: str
    reason: str

    @property
    def why(self) -> str:
        """The former name of :attr:`reason` (kept for code written against symshape 0.1)."""
        return self.reason

    def __repr__(self) -> str:
        return fmt(self.expr)

    def __str__(self) -> str:
        return f"{self!r}  [layer {self.layer!r} ({self.kind}): {self.reason}]"


@dataclass(frozen=True)
class Layer:
    """One applied op: ``name`` is the qualified module path ("features.3"), ``kind`` the class
    name; shapes are :class:`Shape`; ``params`` counts the module's parameters; ``macs`` is a
    sympy expression in the default convention (README, "Counting convention"), a Python int in
    a numeric report; ``attrs`` holds the module's public hyper-parameters (kernel_size, stride,
    padding, ...) as plain data, for renderers and counters, and for a function call the function
    it was (``"function": "operator.matmul"``, ``"torch.matmul"``, ``"F.relu"``); ``windows``
    the sliding windows of the op (one :class:`~symshape.rules.window.Window` per dim, aligned to
    the trailing dims; None for a dim the op keeps as it is); ``inputs`` the edges of the graph:
    for each input shape, the index in ``Report.layers`` of the layer that produced it, -1 for the
    model's input and None for a tensor no layer produced (a parameter, a constant); ``only``
    None where the layer runs at every size of the domain, else the condition where it runs: a
    layer of a branch's richer path where the paths merged into one formula (a padding copy that
    torch skips where nothing is padded), at no MACs, whose output counts in the activations only
    where the condition holds (exactly at given sizes; the symbolic totals count it everywhere)."""

    name: str
    kind: str
    in_shapes: tuple
    out_shape: object
    params: int
    macs: sympy.Expr
    attrs: dict = field(default_factory=dict, hash=False)
    windows: tuple = ()
    inputs: tuple = ()
    only: object = None

    @property
    def in_shape(self):
        """The shape of the first input."""
        return self.in_shapes[0] if self.in_shapes else None

    @property
    def out_shapes(self) -> tuple:
        """Every tensor output's shape: ``(out_shape,)`` for one output."""
        return shapes_of(self.out_shape)

    @property
    def activations(self) -> sympy.Expr:
        """Elements of the output (all outputs, for ops with several); 0 at sizes where the layer
        does not run (:attr:`only` false)."""
        if self.out_shape is None or self.only is sympy.false:
            return sympy.Integer(0)
        return self.out_shape.numel

    def subs(self, values, memo: Optional[dict] = None) -> "Layer":
        memo = {} if memo is None else memo
        only = None if self.only is None else _subs(self.only, values, memo)
        return replace(self, in_shapes=_subs(self.in_shapes, values, memo),
                       out_shape=_subs(self.out_shape, values, memo), macs=plain(_subs(self.macs, values, memo)),
                       only=None if only is sympy.true else only)


def module_of(name: str) -> str:
    """The qualified module path of a layer name: ``"pool#2"`` (the second call of ``pool``) -> ``"pool"``."""
    return name.split("#", 1)[0]


@dataclass(frozen=True)
class ModuleCall:
    """One call of a module that has no rule of its own (a container, or a module whose forward
    was traced op by op): ``name`` is its qualified path (``"#2"`` appended for its second call),
    ``kind`` its class name, ``params`` its parameters (each once), and ``first``/``stop`` the
    slice of ``Report.layers`` that the call made. :meth:`Report.layer` turns it into a
    :class:`Layer` whose MACs are the sum over that slice."""

    name: str
    kind: str
    in_shapes: tuple
    out_shape: object
    params: int
    first: int
    stop: int

    def subs(self, values, memo: Optional[dict] = None) -> "ModuleCall":
        memo = {} if memo is None else memo
        return replace(self, in_shapes=_subs(self.in_shapes, values, memo), out_shape=_subs(self.out_shape, values, memo))


@dataclass(frozen=True)
class Report:
    """The traced model.

    ``output_shape``, ``layers``, ``params`` (unique parameters of the model), ``domain`` (the
    conditions under which the model runs), ``symbols`` (the input size symbols), ``itemsize``
    (bytes per element of the model's floating dtype, for torch's tensor size limit), and the totals
    ``macs``, ``flops`` (= 2·macs) and ``activations``. :meth:`at` evaluates at sizes.
    """

    model: str
    input_shape: Shape
    layers: tuple
    output_shape: object
    params: int
    domain: tuple = ()
    symbols: tuple = ()
    sizes: Mapping = field(default_factory=dict)
    modules: tuple = ()
    itemsize: int = 4
    frozen: int = 0
    pieces: tuple = ()
    branch: tuple = ()

    def __post_init__(self):  # the renderers and solvers attach with the package, which loads lazily
        __import__("symshape")._load()

    def piece(self, sizes: Optional[Mapping] = None, **more) -> "Report":
        """The piece of a piecewise report that holds at the given sizes (all of them), else
        this report. A forward that branches on the sizes with both sides running
        (``if h >= 224: ... else: ...``) gives one piece per path: ``pieces`` lists them, each a
        full report whose ``branch`` holds the branch conditions that select it (they are in its
        domain too); the report itself is the first piece, the one at a typical size (224)."""
        if not self.pieces:
            return self
        values, memo = self.values({**(sizes or {}), **more}), {}
        for piece in self.pieces:
            if all(substitute(c.expr, values, memo) is not sympy.false for c in piece.branch):
                return piece
        return self

    @property
    def binding(self) -> tuple:
        """The domain's conditions no other one implies (:mod:`~symshape.implied`); ``domain`` keeps
        all, in the order the layers ask for them, which tells where torch raises first."""
        from .implied import binding
        return binding(self.domain, keep=self.branch)

    @property
    def macs(self) -> sympy.Expr:
        """Total multiply-accumulates (bias excluded; README, "Counting convention"), factored:
        :func:`symshape.forms.factored_sum` of the layers' MACs."""
        return plain(factored_sum(layer.macs for layer in self.layers))

    @property
    def flops(self) -> sympy.Expr:
        """Total FLOPs = 2 · MACs, as torch.utils.flop_counter counts them."""
        return plain(scaled(2, self.macs))

    @property
    def activations(self) -> sympy.Expr:
        """Total elements of all layer outputs (factored, as :attr:`macs`); an upper bound where
        some layer runs only at some sizes (:attr:`partial_note`)."""
        return plain(factored_sum(layer.activations for layer in self.layers))

    @property
    def partial(self) -> tuple:
        """The layers that run only where a condition holds (:attr:`Layer.only`, still undecided
        here): a branch's richer path where its paths merged into one formula."""
        return tuple(layer for layer in self.layers if layer.only is not None and layer.only is not sympy.false)

    @property
    def partial_note(self) -> str:
        """Why the activation and memory totals are an upper bound, or "" where they are exact."""
        layers = self.partial
        if not layers:
            return ""
        names = ", ".join(layer.name for layer in layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
        return (f"activations and memory are an upper bound: {names} run only where a branch of their module "
                f"takes one side (Layer.only) and count here at every size; rep.at(...) leaves out those torch "
                f"skips at its sizes")

    def layer(self, name: str) -> Layer:
        """The record of the layer or module with this qualified name. A module called several
        times has one record per call: ``name`` is the first, ``name#2`` the second, and so on. A
        container (or a module traced op by op) gets a record whose params are its own and whose
        MACs are the sum over the layers its call made.

        >>> import torch.nn as nn, symshape as ss
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.block, self.pool = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), nn.MaxPool2d(2)
        ...     def forward(self, x):
        ...         return self.pool(self.pool(self.block(x)))
        >>> rep = ss.trace(Net(), "1,3,H,W")
        >>> [layer.name for layer in rep.layers]
        ['block.0', 'block.1', 'pool', 'pool#2']
        >>> rep.layer("pool#2").out_shape
        (1, 8, floor((H - 6)/4) + 1, floor((W - 6)/4) + 1)
        >>> block = rep.layer("block")
        >>> block.kind, block.out_shape, block.params, block.macs
        ('Sequential', (1, 8, H - 2, W - 2), 224, 216*(H - 2)*(W - 2))
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        for call in self.modules:
            if call.name == name:
                macs = plain(sympy.Add(*(layer.macs for layer in self.layers[call.first:call.stop])))
                return Layer(call.name, call.kind, call.in_shapes, call.out_shape, call.params, macs)
        known = [layer.name for layer in self.layers] + [call.name for call in self.modules if call.name]
        raise KeyError(f"no layer or module named {name!r}; names: {', '.join(repr(n) for n in known[:40])}"
                       + (", ..." if len(known) > 40 else ""))

    def values(self, sizes: Mapping) -> dict:
        """The size symbols of this report mapped to the given values: *sizes* maps names (or
        symbols) to positive integers (Python, sympy, NumPy or torch integer scalars).

        >>> import symshape as ss
        >>> rep = ss.trace(ss.zoo.seed_case1(), "1,3,H,W")
        >>> rep.values({"H": 32, "W": 31})
        {H: 32, W: 31}
        >>> rep.values({"C": 3})
        Traceback (most recent call last):
        ...
        symshape.symbols.ShapeError: 'C' is not a size of this model; its sizes are H, W
        """
        if not isinstance(sizes, Mapping):
            raise ShapeError(f"sizes must map size names to positive integers (such as {{'H': 224}}), "
                             f"got {type(sizes).__name__} {sizes!r:.60}")
        by_name = {s.name: s for s in self.symbols}
        values = {}
        for name, value in sizes.items():
            key = name.name if isinstance(name, sympy.Symbol) else name
            if key not in by_name:
                known = ", ".join(by_name) or "none: the report is numeric already"
                raise ShapeError(f"{key!r} is not a size of this model; its sizes are {known}")
            number = _integer(value)
            if number is None or number < 1:
                raise ShapeError(f"size {key} must be a positive integer, got {value!r}")
            values[by_name[key]] = sympy.Integer(number)
        return values

    def violations(self, **sizes) -> list:
        """The domain conditions that fail at the given sizes (empty: the model runs there); in a
        piecewise report, those of the piece the sizes select."""
        if self.pieces:
            return self.piece(sizes).violations(**sizes)
        values, memo = self.values(sizes), {}

        def fails(cond) -> bool:
            try:
                return substitute(cond.expr, values, memo) is sympy.false
            except ArithmeticError:  # undefined there (a division by a size that is 0): not a size it runs at
                return True
        failed = [c for c in self.domain if fails(c)]
        if failed:
            return failed
        try:
            at = self.at(sizes, limits=False)
        except ArithmeticError:  # a layer's size undefined there: the domain conditions speak for it
            return []
        from .limits import torch_limits

        return [Condition(*limit) for limit, _ in torch_limits(self, at)[0][:1]]

    def at(self, sizes: Optional[Mapping] = None, limits: bool = True, **more) -> "Report":
        """The report at concrete sizes (some or all symbols), with the same structure.

        Raises ShapeError, naming the layer and the condition, where the model does not run: outside
        the domain, or where a tensor would exceed torch's limit of 2**63 - 1 bytes (torch: "Storage
        size calculation overflowed"). Also where torch's own double-precision size arithmetic
        (a float ``scale_factor`` or ``output_ratio`` on a size above 2**40) may part from the closed
        form: a trace at those sizes gives torch's value there.
        """
        if sizes is not None and not isinstance(sizes, Mapping):
            self.values(sizes)  # raises the ShapeError that says what sizes must be
        given = {**(sizes or {}), **more}
        if self.pieces:
            return self._piecewise_at(given, limits)
        values = self.values(given)
        memo: dict = {}  # each distinct sub-expression is evaluated once for the whole report
        remaining = []
        for cond in self.domain:
            holds = substitute(cond.expr, values, memo)
            if holds is sympy.false:
                at = ", ".join(f"{k}={v}" for k, v in given.items())
                raise ShapeError(
                    f"the model does not run at {at}: layer {cond.layer!r} ({cond.kind}) needs {fmt(cond.expr)} "
                    f"({cond.reason}); solve for valid sizes with report.valid_inputs() or pick sizes that satisfy it"
                )
            if holds is not sympy.true:
                remaining.append(replace(cond, expr=holds))
        result = replace(
            self,
            input_shape=self.input_shape.subs(values, memo),
            layers=tuple(layer.subs(values, memo) for layer in self.layers),
            modules=tuple(call.subs(values, memo) for call in self.modules),
            output_shape=_subs(self.output_shape, values, memo),
            domain=tuple(remaining),
            symbols=tuple(s for s in self.symbols if s not in values),
            sizes={**self.sizes, **{s.name: int(v) for s, v in values.items()}},
            branch=tuple(c for c in remaining if any(c.reason == b.reason and c.layer == b.layer for b in self.branch)),
        )
        if limits:
            from .limits import torch_limits

            too_big, inexact = torch_limits(self, result)
            at = ", ".join(f"{k}={v}" for k, v in given.items())
            for _, message in too_big:
                raise ShapeError(message.format(at=at))
            for _, message in inexact:
                raise ShapeError(f"symshape cannot give torch's value at {at}: {message}")
        return result

    def _piecewise_at(self, given: dict, limits: bool) -> "Report":
        """``at`` of a piecewise report: the pieces the sizes can select (one when every size is
        given), each at the sizes; the first that runs there, holding the others as its pieces."""
        values, memo = self.values(given), {}
        found, first = [], None
        for piece in self.pieces:
            if any(substitute(c.expr, values, memo) is sympy.false for c in piece.branch):
                continue
            try:
                found.append(piece.at(given, limits))
            except ShapeError as err:
                first = first or err
        if not found:
            raise first or ShapeError(f"no piece of the report holds at {given}")
        return found[0] if len(found) == 1 else replace(found[0], pieces=tuple(found))

    def __repr__(self) -> str:
        return (f"<Report {self.model} {self.input_shape!r} -> {self.output_shape!r}: "
                f"{len(self.layers)} layers, {self.params:,} params>")

    # Outputs for people (print(rep), rep.to_latex(), rep.to_json(), rep.explain(), ...) and
    # questions (rep.solve(), rep.valid_inputs(), ...) are attached by their own modules
    # (symshape.render, symshape.solve) with @report_method.
