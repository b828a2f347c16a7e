"""Exact reverse solving: which integer sizes satisfy conditions on a report's formulas.

The solver itself knows nothing of models: :func:`solve` takes sympy relations on the sizes
(solver.py), parsed into conditions (conditions.py) and solved one size at a time (one_dim.py)
or jointly (many_dim.py). The questions users ask of a report (``rep.valid_inputs()``,
``rep.exact_inputs()``, ...) build such relations and attach themselves to the report
(questions.py)."""
from .conditions import LIMIT, SCAN
from .questions import exactness_conditions, layer_ranges
from .solver import feasible, solve

__all__ = ["solve", "feasible", "exactness_conditions", "layer_ranges", "SCAN", "LIMIT"]
