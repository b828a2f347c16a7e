"""Markdown with ``$…$`` math, for MkDocs, Sphinx (myst) and GitHub."""
from __future__ import annotations

import html
import re
from typing import Mapping, Optional

import sympy

from .latex import latex, shape_latex, size_equations
from .text import CONVENTION, domain_relations
from ..forms import factored, factored_sum
from ..printing import fmt
from ..receptive import receptive_fields
from .text import fallback_notes, field_cell, kind_cell, memory_column
from ..report import report_method

__all__ = ["to_markdown", "to_html"]


_CODE_SAFE = re.compile(r"[A-Za-z0-9_.\-]*(#[0-9]+)?\Z")  # a qualified name, with "#k" for its k-th call
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#!~{}()+\-.$])")


def _math(text: str) -> str:
    """Math in ``$…$``, with ``<``, ``>`` and ``&`` as HTML entities: Markdown is read as HTML, so
    a name such as ``<script>`` in a ``\\text{}`` label must not become a tag."""
    return "$" + html.escape(text.replace("|", r"\vert "), quote=False) + "$"


def _text(text: str) -> str:
    """A model's or layer's name as Markdown text: HTML escaped, Markdown's punctuation backslashed.

    >>> print(_text("<script>alert(1)</script>"), _text("a_b*c"))
    &lt;script&gt;alert\\(1\\)&lt;/script&gt; a\\_b\\*c
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def _code(name: str) -> str:
    """A layer name as inline code when it is a plain qualified name, else as escaped text."""
    return f"`{name}`" if _CODE_SAFE.match(name) else _text(name)


@report_method
def to_markdown(report, sizes: Optional[Mapping] = None, memory=None) -> str:
    """The report as Markdown: the output-size equations, the per-layer table (math in ``$…$``),
    the totals, the domain and the MAC convention; a last column gives each layer's receptive
    field r/j/P where its output keeps spatial dims. With *sizes*, the table has the numbers.
    With *memory* (a dtype, or True for float32), a column after the MACs gives the bytes each
    layer saves for backward in training (:func:`symshape.memory.saved_column`), its header
    naming the dtype, and the totals their sum.

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> md = to_markdown(ss.trace(zoo.seed_case1(), "1,3,H,W"))
    >>> print(md.splitlines()[2])
    - $H_{\\text{0}} = \\left\\lfloor \\frac{H - 7}{2} \\right\\rfloor + 1$
    >>> print(md.splitlines()[11])
    | `3` | Linear | $\\left(1, 10\\right)$ | 54,090 | $54{,}080$ | |
    """
    shown = report.at(sizes) if sizes else report
    at = ", ".join(f"{k}={v}" for k, v in (sizes or {}).items())
    lines = [f"**{_text(report.model)}**, input {_math(shape_latex(report.input_shape))}" + (f" at {at}" if at else ""), ""]
    values = report.values(sizes) if sizes else {}
    for label, expr in size_equations(report):
        value = f" = {latex(expr.subs(values))}" if values else ""
        lines.append(f"- {_math(f'{label} = {latex(expr)}{value}')}")
    if len(lines) > 2:
        lines.append("")
    fields = receptive_fields(shown)
    rf = any(f is not None for f in fields)
    mem = memory_column(shown, memory)
    lines += ["| layer | type | output shape | params | MACs |" + (f" {mem[0]} |" if mem else "")
              + (" RF $r/j/P$ |" if rf else ""),
              "|---|---|---|---:|---:|" + ("---:|" if mem else "") + ("---|" if rf else "")]
    for k, (layer, field) in enumerate(zip(shown.layers, fields)):
        cell = (f" {_math(field_cell(field, latex))} |" if field else " |") if rf else ""
        saved = f" {_math(latex(mem[1][k]))} |" if mem else ""
        lines.append(f"| {_code(layer.name) if layer.name else '`<root>`'} | {_text(kind_cell(layer))} | "
                     f"{_math(shape_latex(layer.out_shape))} | {layer.params:,} | {_math(latex(factored(layer.macs)))} |"
                     f"{saved}{cell}")
    total = f", {_math(latex(factored_sum(t for b in mem[1] for t in sympy.Add.make_args(b))))} bytes saved for backward in training" if mem else ""
    lines += ["", f"Output {_math(shape_latex(shown.output_shape))}, {shown.params:,} parameters, "
                  f"{_math(latex(shown.macs))} MACs{total}."]
    if report.domain:
        lines.append("The model runs when " + ", ".join(_math(latex(r)) for r in domain_relations(report.domain)) + ".")
    if report.pieces:
        lines += ["", f"The forward branches on the sizes and {len(report.pieces)} paths run: the table is "
                      "piece 1's; each piece holds where its conditions do."]
        lines += [f"- piece {i} where {', '.join(_math(latex(r)) for r in domain_relations(p.branch))}: output "
                  f"{_math(shape_latex(p.output_shape))}, {_math(latex(p.macs))} MACs"
                  for i, p in enumerate(report.pieces, 1)]
    lines += ["\\" + note for note in fallback_notes(report.layers)]  # the marker, not Markdown emphasis
    lines += ["", f"*{CONVENTION}*"]
    return "\n".join(lines)


@report_method(name="_repr_html_")
def to_html(report) -> str:
    """The per-layer table as HTML (plain-text formulas), for Jupyter's ``_repr_html_``."""
    rows = "".join(
        f"<tr><td><code>{html.escape(layer.name or '<root>')}</code></td><td>{html.escape(layer.kind)}</td>"
        f"<td><code>{html.escape(str(layer.out_shape))}</code></td><td style='text-align:right'>{layer.params:,}</td>"
        f"<td style='text-align:right'><code>{html.escape(fmt(factored(layer.macs)))}</code></td></tr>"
        for layer in report.layers)
    domain = ", ".join(html.escape(fmt(r)) for r in domain_relations(report.domain))
    return (f"<p><b>{html.escape(report.model)}</b> input <code>{html.escape(str(report.input_shape))}</code></p>"
            "<table><thead><tr><th>layer</th><th>type</th><th>output shape</th><th>params</th><th>MACs</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            f"<p>output <code>{html.escape(str(report.output_shape))}</code>, {report.params:,} params, "
            f"MACs <code>{html.escape(fmt(report.macs))}</code>"
            + (f"; runs when <code>{domain}</code>" if domain else "")
            + (f" (piece 1 of {len(report.pieces)}: the forward branches on the sizes; see rep.pieces)"
               if report.pieces else "") + f"</p><p><i>{html.escape(CONVENTION)}</i></p>")
