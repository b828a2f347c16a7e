"""Shape rules, one small pure function per op, registered by module type (see :mod:`.registry`).

Importing this package registers every built-in rule.
"""
from . import activation, conv, linear, norm, pool, recurrent, reshape, resample  # noqa: F401  (registration)
from . import attention, elementwise, factories, functional, products, reductions, tensor  # noqa: F401  (graph rules)
from .registry import RULES, Out, register, rule_for

__all__ = ["RULES", "Out", "register", "rule_for"]
