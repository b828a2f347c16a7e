"""Plots (matplotlib, the optional ``plot`` extra): a feature size, MACs and activation memory
against the input resolution, with the sizes where the model does not run shaded and a target
size marked."""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import sympy

from ..symbols import ShapeError
from ..evaluate import compile_expr
from ..printing import fmt
from ..report import report_method
from .text import CONVENTION

__all__ = ["curves", "plot"]


def _tracked(report, layer: Optional[str]):
    if layer is not None:
        return report.layer(layer)
    for item in reversed(report.layers):
        if isinstance(item.out_shape, tuple) and sympy.sympify(item.activations, strict=True).free_symbols:
            return item
    return report.layers[-1] if report.layers else None


def _assignments(report, sizes, vary, fixed) -> tuple:
    names = [s.name for s in report.symbols]
    if not names:
        raise ShapeError("the report has no symbolic sizes to vary: trace the model on an input such as '1,3,H,W'")
    fixed = dict(fixed or {})
    vary = [v for v in names if v not in fixed] if vary is None else [vary] if isinstance(vary, str) else list(vary)
    unknown = [v for v in [*vary, *fixed] if v not in names]
    if unknown:
        raise ShapeError(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a size of this model; "
                         f"its sizes are {', '.join(names)}")
    loose = [n for n in names if n not in vary and n not in fixed]
    if loose:
        raise ShapeError(f"give {', '.join(loose)} a value with fixed={{...}} or vary it with vary=[...]")
    if not vary:
        raise ShapeError("nothing to vary: every size is fixed")
    return vary, fixed, list(sizes) if sizes is not None else list(range(1, 257))


def curves(report, sizes: Optional[Iterable[int]] = None, vary: Optional[Sequence[str]] = None,
           fixed: Optional[Mapping] = None, layer: Optional[str] = None, bytes_per_element: int = 4) -> dict:
    """The numbers behind :func:`plot`, exactly evaluated: for each resolution r (every size in
    *vary* set to r, the others as in *fixed*), the elements of the tracked layer's output, the
    MACs and the activation bytes (``None`` where a layer up to the tracked one does not run), and
    whether the whole model runs.

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> data = curves(ss.trace(zoo.seed_case1(), "1,3,H,W"), range(29, 34))
    >>> data["layer"], data["feature"], data["valid"]
    ('2', [4608, 4608, 5408, 5408, 6272], [False, False, True, True, False])
    """
    vary, fixed, sizes = _assignments(report, sizes, vary, fixed)
    tracked = _tracked(report, layer)
    order = [item.name for item in report.layers]
    upto = set(order[:order.index(tracked.name) + 1]) if tracked is not None else set()
    feature = sympy.sympify(tracked.activations, strict=True) if tracked is not None else sympy.Integer(0)
    by_name = {s.name: s for s in report.symbols}
    data = {"sizes": sizes, "vary": vary, "fixed": fixed, "layer": tracked.name if tracked is not None else None,
            "formula": fmt(feature), "feature": [], "macs": [], "bytes": [], "valid": []}
    # compiled once, evaluated exactly at every resolution
    conditions = [(c, compile_expr(c.expr, fallback=True)) for c in report.domain]
    quantities = [(key, compile_expr(sympy.sympify(expr, strict=True), fallback=True))
                  for key, expr in (("feature", feature), ("macs", report.macs), ("bytes", report.activations))]
    for r in sizes:
        values = {by_name[n]: r for n in vary}
        values.update({by_name[n]: v for n, v in fixed.items()})
        failed = [c for c, holds in conditions if holds(values) == False]  # noqa: E712 (bool or sympy.false)
        runs_to_layer = not any(c.layer in upto for c in failed)
        for key, value_at in quantities:
            value = int(value_at(values)) * (bytes_per_element if key == "bytes" else 1) if runs_to_layer else None
            data[key].append(value)
        data["valid"].append(not failed)
    return data


def _runs(flags, xs):
    """Contiguous runs of x where flags are False, as (first, last) pairs."""
    runs, start = [], None
    for x, ok in zip(xs, flags):
        if not ok and start is None:
            start = x
        if ok and start is not None:
            runs.append((start, prev))
            start = None
        prev = x
    if start is not None:
        runs.append((start, xs[-1]))
    return runs


@report_method
def plot(report, sizes: Optional[Iterable[int]] = None, *, vary: Optional[Sequence[str]] = None,
         fixed: Optional[Mapping] = None, layer: Optional[str] = None, target: Optional[int] = None,
         bytes_per_element: int = 4, path: Optional[str] = None, title: Optional[str] = None):
    """Three panels against the input resolution: the elements of a layer's output (by default
    the last layer whose size depends on the input: the flatten size feeding a Linear), total
    MACs, and activation memory (the sum of the layers' outputs at *bytes_per_element*). Sizes
    where the model does not run are shaded; with *target*, the resolutions where the feature
    equals it are marked. Returns the matplotlib Figure; with *path*, also saves it.

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> fig = plot(ss.trace(zoo.seed_case1(), "1,3,H,W"), range(7, 65), target=5408)  # doctest: +SKIP
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'symshape[plot]'") from None
    data = curves(report, sizes, vary, fixed, layer, bytes_per_element)
    xs = data["sizes"]
    fig = Figure(figsize=(8, 8.5), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    panels = [
        (data["feature"], f"elements of layer {data['layer']!r} output", "C0"),
        (data["macs"], "MACs", "C1"),
        (data["bytes"], f"activation memory\n({bytes_per_element} bytes per element)", "C2"),
    ]
    for ax, (ys, label, color) in zip(axes, panels):
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="mid", color=color, linewidth=1.5)
        ax.set_ylabel(label)
        ax.yaxis.set_major_formatter(EngFormatter(unit="B" if color == "C2" else ""))
        ax.grid(True, alpha=0.3)
        for i, (lo, hi) in enumerate(_runs(data["valid"], xs)):
            ax.axvspan(lo - 0.5, hi + 0.5, color="0.85", zorder=0, label="model does not run" if i == 0 else None)
    if target is not None:
        hits = [x for x, y in zip(xs, data["feature"]) if y == target]
        axes[0].axhline(target, color="C3", linestyle="--", linewidth=1, label=f"target {target:,}")
        if hits:
            axes[0].plot(hits, [target] * len(hits), "o", color="C3",
                         label=f"= target at {_ranges(hits)}")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small")
    given = ", ".join(f"{k}={v}" for k, v in data["fixed"].items())
    axes[-1].set_xlabel(" = ".join(data["vary"]) + " (input size)" + (f", {given}" if given else ""))
    formula = data["formula"]
    formula = formula if len(formula) <= 70 else formula[:67] + "..."
    fig.suptitle((title or report.model) + f"\nlayer {data['layer']!r}: {formula}", fontsize="medium")
    fig.text(0.5, -0.01, CONVENTION, ha="center", va="top", fontsize="x-small", color="0.4")
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _ranges(values) -> str:
    """``"31-32, 40"`` for [31, 32, 40]."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)
