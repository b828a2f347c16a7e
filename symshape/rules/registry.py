"""The registry from op to shape rule, and what a rule returns.

A rule is a small pure function. For a module type it takes ``(module, *input_shapes, **kwargs)``
and returns an :class:`Out` (or just the output shape). Shapes are tuples of sympy expressions.
A rule states its formula in its docstring, raises :class:`~symshape.ShapeError` with a message
that says what was expected and how to fix it (the tracer adds the layer's name, type and input
shape), and lists the conditions its formula needs as ``requires``.

Users extend the registry with :func:`register`::

    @symshape.register(MyBlock)
    def my_block(m, x):
        '''out = in: the block keeps the shape.'''
        return x
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import sympy

__all__ = ["Out", "register", "rule_for", "RULES"]


@dataclass(frozen=True)
class Out:
    """What a rule returns.

    ``shape``: the output shape (a tuple of sympy expressions), or a tuple of shapes for ops with
    several outputs. ``macs``: multiply-accumulates in the default convention (README, "Counting convention").
    ``requires``: ``(condition, why)`` pairs, sympy relations on the sizes that must hold for torch
    to run the op; the tracer drops those that are always true, raises on those that are always
    false, and keeps the rest as the model's domain. ``windows``: for sliding-window ops (conv,
    pool), one :class:`~symshape.rules.window.Window` per spatial dim, kept on the layer for the
    explanation, the exactness conditions and the receptive field.
    """

    shape: Any
    macs: Any = sympy.Integer(0)
    requires: tuple = ()
    windows: tuple = ()


Rule = Callable[..., Union[Out, tuple]]

#: op -> rule. Keys are module types (looked up along the MRO, so subclasses inherit their
#: parent's rule), callables (for function calls in graphs) and method names (str).
RULES: dict = {}


def register(*keys) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule for every key (module type, function or
    method name). A later registration for the same key replaces the earlier one.

    >>> import torch.nn as nn
    >>> class Twice(nn.Module):
    ...     def forward(self, x):
    ...         return x.repeat(1, 2, 1, 1)
    >>> @register(Twice)
    ... def twice(m, x):
    ...     '''out = (N, 2C, H, W)'''
    ...     return (x[0], 2 * x[1], *x[2:])
    >>> rule_for(Twice()) is twice
    True
    """
    if not keys:
        raise TypeError("register() needs at least one module type, function or method name")

    def deco(fn: Rule) -> Rule:
        for key in keys:
            RULES[key] = fn
        return fn

    return deco


def rule_for(op) -> Optional[Rule]:
    """The rule for a module instance (by its type's MRO, unless a subclass overrides forward), a
    function, or a method name.

    >>> import torch.nn as nn
    >>> class Channels(nn.LayerNorm):
    ...     def forward(self, x):
    ...         return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    >>> rule_for(nn.LayerNorm(8)) is not None, rule_for(Channels(8))
    (True, None)
    """
    if isinstance(op, str) or callable(op) and not hasattr(op, "forward"):
        try:
            return RULES.get(op)
        except TypeError:  # unhashable callables
            return None
    forward = getattr(type(op), "forward", None)
    for cls in type(op).__mro__:
        rule = RULES.get(cls)
        if rule is not None:
            # A subclass that overrides forward does something else: no inherited rule (its forward
            # is traced instead, e.g. a LayerNorm subclass that permutes channels-first maps).
            return rule if getattr(cls, "forward", None) is forward else None
    return None
