"""The results of shape rules within one trace, kept by their exact arguments.

A forward that branches on the sizes is run again and again (each path of a module call, each
probe of a branch's other side, each piece of a piecewise report), and every run applies the same
rules to the same shapes. A rule is a pure function of its arguments (the module, whose
hyper-parameters do not change while it is traced, and the shapes, sizes and flags of the call),
so its result is kept for the rest of the trace. The key is exact: every value is keyed with its
type (``2``, ``2.0``, ``True`` and ``sympy.Integer(2)`` are different keys; a float by its exact
bits), sympy expressions by sympy's structural equality, modules by identity. A call with any other
argument (a value the key does not know) is not kept.
"""
from __future__ import annotations

import os

import dataclasses

import sympy
import torch

from .report import Outputs, Shape
from .rules.registry import Out

__all__ = ["rule_key", "memo_tag", "fresh"]

_PLAIN = (bool, int, str, type(None), type(Ellipsis), torch.dtype, torch.device, torch.layout, torch.memory_format)


class _Unkeyable(Exception):
    pass


def _key(v):
    t = type(v)
    if t in _PLAIN:
        return (t, v)
    if isinstance(v, sympy.Basic):
        return v
    if t is float:
        return (t, v.hex())
    if isinstance(v, (tuple, list)):
        return (t, getattr(v, "names", None), tuple(_key(x) for x in v))  # names: Outputs of a dict
    if t is dict:
        return (t, tuple((_key(k), _key(x)) for k, x in v.items()))
    if t is slice:
        return (t, _key(v.start), _key(v.stop), _key(v.step))
    raise _Unkeyable


_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules") + os.sep


def _own(fn) -> bool:
    code = getattr(fn, "__code__", None)  # a wrapper made with functools.wraps keeps its own code
    return code is not None and os.path.abspath(code.co_filename).startswith(_RULES)


def memo_tag(rule):
    """What identifies *rule* in a key where it is one of symshape's own shape rules (written in
    symshape/rules, pure by contract), else None: a user's rule, torch's meta fallback and a
    one-off function are always run."""
    tag = getattr(rule, "_memo_tag", None)  # a wrapper of a rule (frontends.compacting)
    if tag is not None:
        return tag if _own(tag[1]) else None
    return rule if _own(rule) else None


def rule_key(tag, op, inputs: tuple, kwargs):
    """The exact key of one call of the rule *tag* (:func:`memo_tag`), or None where an argument
    has no exact key."""
    try:
        return (tag, op, _key(inputs), _key(kwargs) if kwargs else None)
    except (_Unkeyable, TypeError):  # TypeError: an unhashable value inside a sympy expression
        return None


def fresh(value):
    """A kept result with new containers (each layer's output shape is an object of its own: the
    tracer knows which layer made a shape by the object)."""
    if isinstance(value, Out):
        return dataclasses.replace(value, shape=fresh(value.shape))
    if isinstance(value, Outputs):
        return Outputs(tuple(fresh(v) for v in value), value.names)
    if isinstance(value, Shape):
        return Shape(value)
    if type(value) in (tuple, list):
        return type(value)(fresh(v) for v in value)
    if type(value) is dict:
        return {k: fresh(v) for k, v in value.items()}
    return value
