"""Numeric verification in torch: :func:`observe` runs a model once and records what each module
did (observing.py); :func:`default_sizes` picks sizes inside and just outside a report's domain
(sampling.py); :func:`check` compares a report with torch at those sizes (compare.py)."""
from .compare import CheckResult, Comparison, check
from .observing import (FLOPCOUNTER_AVOIDED, FLOPCOUNTER_BLIND_SPOTS, META_DIVERGENCES, Observations, Observed,
                        ObserveError, input_dtype, observe)
from .sampling import default_sizes

__all__ = ["check", "CheckResult", "Comparison", "default_sizes", "observe", "input_dtype", "Observed", "Observations",
           "ObserveError", "FLOPCOUNTER_BLIND_SPOTS", "FLOPCOUNTER_AVOIDED", "META_DIVERGENCES"]
