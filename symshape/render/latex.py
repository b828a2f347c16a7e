"""LaTeX for papers: per-layer output-size equations (``align``) and a booktabs table.

Floors print the way papers write them, ``\\left\\lfloor \\frac{H - 7}{2} \\right\\rfloor + 1``,
not sympy's ``\\left\\lfloor{\\frac{H}{2} - \\frac{7}{2}}\\right\\rfloor``; size symbols keep the
names the user gave them.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

import sympy
from sympy.printing.latex import LatexPrinter

from ..forms import factored, factored_sum
from ..printing import grouped
from ..report import report_method
from ..receptive import receptive_fields
from .text import CONVENTION, domain_relations, domain_summary, field_cell, memory_column, pieces_lines

__all__ = ["latex", "SizeLatexPrinter", "equations", "table", "to_latex", "document", "repr_latex", "escape"]

_SIMPLE_NAME = re.compile(r"[A-Za-z](?:[0-9]+|_[A-Za-z0-9]+)?\Z")
_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "&": r"\&", "%": r"\%", "$": r"\$",
            "#": r"\#", "^": r"\^{}", "~": r"\~{}"}


def escape(text: str) -> str:
    """Text for LaTeX's text mode: the ten special characters escaped.

    >>> print(escape("layer1.3_a & b"))
    layer1.3\\_a \\& b
    """
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


class SizeLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with grouped floors, factored products, congruences, and size
    symbols printed under the user's names (multi-letter names in ``\\mathit``)."""

    def _print_Symbol(self, expr, style="plain"):
        if _SIMPLE_NAME.match(expr.name):
            return super()._print_Symbol(expr, style)
        return r"\mathit{" + escape(expr.name) + "}"

    def _print_rounding(self, left, right, expr):
        parts = grouped(expr.args[0])
        if parts is None:
            return rf"\left{left} {self._print(expr.args[0])} \right{right}"
        num, den = parts
        return rf"\left{left} \frac{{{self._print(num)}}}{{{self._print(den)}}} \right{right}"

    def _print_floor(self, expr, exp=None):
        text = self._print_rounding(r"\lfloor", r"\rfloor", expr)
        return text if exp is None else rf"{{{text}}}^{{{exp}}}"

    def _print_ceiling(self, expr, exp=None):
        text = self._print_rounding(r"\lceil", r"\rceil", expr)
        return text if exp is None else rf"{{{text}}}^{{{exp}}}"

    def _print_Integer(self, expr):
        value = int(expr)
        return f"{value:,}".replace(",", "{,}") if abs(value) >= 10000 else str(value)

    def _print_Mul(self, expr):
        # sympy's own printer distributes an integer coefficient into the first sum; keep
        # 4704 (a + 1)(b + 1) factored, as the rules build it.
        coeff, rest = expr.as_coeff_Mul()
        factors = sympy.Mul.make_args(rest)
        if not coeff.is_Integer or any(f.is_Pow and f.exp.is_negative for f in factors):
            return super()._print_Mul(expr)
        parts = []
        for f in expr.as_ordered_factors():
            if f.is_Number:
                continue
            text = self._print(f)
            parts.append(rf"\left({text}\right)" if f.is_Add else text)
        body = " ".join(parts)
        if coeff == 1:
            return body
        if coeff == -1:
            return "- " + body
        return f"{self._print(coeff)} {body}"

    def _print_Equality(self, expr):
        lhs, rhs = expr.args
        if isinstance(lhs, sympy.Mod) and rhs == 0:
            return rf"{self._print(lhs.args[0])} \equiv 0 \pmod{{{self._print(lhs.args[1])}}}"
        return self._print_Relational(expr)


_PRINTER = SizeLatexPrinter()


def latex(expr) -> str:
    """A size expression (or relation) as LaTeX math.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> print(latex(floor_div(H - 7, 2) + 1))
    \\left\\lfloor \\frac{H - 7}{2} \\right\\rfloor + 1
    >>> print(latex(sympy.Mul(4704, floor_div(H - 7, 2) + 1, floor_div(W - 7, 2) + 1)))
    4704 \\left(\\left\\lfloor \\frac{H - 7}{2} \\right\\rfloor + 1\\right) \\left(\\left\\lfloor \\frac{W - 7}{2} \\right\\rfloor + 1\\right)
    >>> print(latex(sympy.Eq(sympy.Mod(H, 32), 0)), latex(symbols("width")), latex(795872))
    H \\equiv 0 \\pmod{32} \\mathit{width} 795{,}872
    """
    return _PRINTER.doprint(sympy.sympify(expr, strict=True))


def _is_multi(shape) -> bool:
    return isinstance(shape, tuple) and bool(shape) and all(isinstance(s, tuple) or s is None for s in shape)


def shape_latex(shape) -> str:
    """A shape, or several, as LaTeX math: ``\\left(1, 32, 13, 13\\right)``."""
    if getattr(shape, "names", None) is not None:  # a dict of outputs
        return ", ".join(rf"\text{{{escape(k)}}}\colon " + (r"\mathrm{None}" if s is None else shape_latex(s))
                         for k, s in shape.items())
    if _is_multi(shape):
        return ", ".join(r"\mathrm{None}" if s is None else shape_latex(s) for s in shape)
    return r"\left(" + ", ".join(latex(d) for d in shape) + r"\right)"


def _label(dim, layer: str, taken: set) -> str:
    symbols = sorted(dim.free_symbols, key=lambda s: s.name)
    base = latex(symbols[0]) if len(symbols) == 1 else "n"
    if "_" in base or "^" in base:
        base = "{" + base + "}"
    label = rf"{base}_{{\text{{{escape(layer)}}}}}"
    i = 2
    while label in taken:
        label = rf"{base}_{{\text{{{escape(layer)}}},{i}}}"
        i += 1
    taken.add(label)
    return label


def size_equations(report) -> list:
    """``(label, expr)`` for every non-constant output dim that a layer changes: the output-size
    equations of the model, in layer order."""
    rows = []
    for layer in report.layers:
        outs = [layer.out_shape] if not _is_multi(layer.out_shape) else [s for s in layer.out_shape if s is not None]
        ins = {d for s in layer.in_shapes if isinstance(s, tuple) and not _is_multi(s) for d in s}
        taken: set = set()
        for shape in outs:
            for dim in shape:
                if dim.free_symbols and dim not in ins:
                    rows.append((_label(dim, layer.name or "out", taken), dim))
    return rows


def equations(report, sizes: Optional[Mapping] = None, env: str = "align") -> str:
    """The output-size equations in an ``align`` environment (``env="aligned"`` for use inside
    math), one row per equation, each with one ``&=``; with *sizes*, each ends with its value.
    Empty when the report has no symbolic sizes."""
    rows = size_equations(report)
    if not rows:
        return ""
    values = report.values(sizes) if sizes else {}
    lines = []
    for label, expr in rows:
        line = f"{label} &= {latex(expr)}"
        if values:
            line += f" = {latex(expr.subs(values))}"
        lines.append(line)
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(lines) + f"\n\\end{{{env}}}"


def _cell(expr) -> str:
    return f"${latex(expr)}$"


def table(report, env: str = "tabular", memory=None) -> str:
    """The per-layer table with booktabs rules: layer, type, output shape, parameters, MACs, with
    *memory* (a dtype, or True for float32) the bytes each layer saves for backward in training
    (:func:`symshape.memory.saved_column`; the header names the dtype), the receptive field r/j/P
    (where a layer keeps spatial dims), then the totals. ``env="longtable"`` breaks it across pages
    and fits it to the line width: fixed-width columns (so longtable needs no second pass), and
    names, shapes and MAC sums that wrap (the document loads array)."""
    fields = receptive_fields(report)
    rf = any(f is not None for f in fields)
    mem = memory_column(report, memory)
    head = (r"Layer & Type & Output shape & Parameters & MACs" + (f" & {escape(mem[0].capitalize())}" if mem else "")
            + (r" & RF $r/j/P$" if rf else "") + r" \\")
    fit = env == "longtable"
    if fit:
        macs_width = (0.42 if not rf else 0.29) - (0.13 if mem else 0)
        widths = (0.14, 0.11, 0.19, 0.10, macs_width) + ((0.13,) if mem else ()) + ((0.11,) if rf else ())
        spec = "".join(rf">{{\raggedleft\arraybackslash}}p{{{w:.2f}\linewidth}}" if i == 3 else
                       rf">{{\raggedright\arraybackslash}}p{{{w:.2f}\linewidth}}" for i, w in enumerate(widths))
        lines = [r"\setlength{\tabcolsep}{2pt}", f"\\begin{{longtable}}{{{spec}}}", r"\toprule", head, r"\midrule",
                 r"\endhead"]
    else:
        lines = [f"\\begin{{{env}}}{{lllrr{'r' if mem else ''}{'l' if rf else ''}}}", r"\toprule", head, r"\midrule"]
    name, kind, shape, macs = ((_breakable_name, _breakable_kind, _breakable_shape, _breakable_macs) if fit
                               else (escape, escape, shape_latex, _cell))
    for k, (layer, field) in enumerate(zip(report.layers, fields)):
        cell = (f" & ${field_cell(field, latex)}$" if field else " &") if rf else ""
        if fit:
            cell = cell.replace(";", r";\allowbreak ").replace("/", r"/\allowbreak ")
        saved = f" & {macs(mem[1][k])}" if mem else ""
        lines.append(f"\\texttt{{{name(layer.name or '<root>')}}} & {kind(layer.kind)} & "
                     f"${shape(layer.out_shape)}$ & {layer.params:,} & {macs(factored(layer.macs))}{saved}{cell} \\\\")
    total = macs(report.macs)
    below = fit and len(total) > _LONG  # a row never breaks across pages: a long total goes below the table
    saved = f" & {macs(factored_sum(t for b in mem[1] for t in sympy.Add.make_args(b)))}" if mem else ""
    lines += [r"\midrule",
              f"Total & & ${shape(report.output_shape)}$ & {report.params:,} & {'below' if below else total}{saved}"
              f"{' &' if rf else ''} \\\\",
              r"\bottomrule", f"\\end{{{env}}}"]
    if below:
        lines.append(rf"{{\raggedright Total MACs: {total}\par}}")
    return "\n".join(lines)


#: The length of LaTeX beyond which the document puts the total MACs below its table.
_LONG = 600


def _breakable_macs(expr) -> str:
    """MACs whose line may break between the factors of a product, as well as after + and -."""
    text = _cell(expr)
    text = re.sub(r"(\\right(?:\)|\\rfloor|\\rceil)|\d) (?=\\left)", r"\1 \\allowbreak ", text)
    return text


def _breakable_name(text: str, capitals: bool = False) -> str:
    """A name that may break after its dots and underscores (with *capitals*, also before an
    inner capital: Adaptive|Avg|Pool2d)."""
    if capitals:
        text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "\0", text)
    text = escape(text.replace(".", ".\0").replace("_", "_\0"))
    return text.replace("\0", r"\allowbreak{}")


def _breakable_kind(text: str) -> str:
    return _breakable_name(text, capitals=True)


def _breakable_shape(shape) -> str:
    """A shape whose line may break after each comma: plain parentheses (a \\left...\\right group
    never breaks)."""
    return shape_latex(shape).replace(r"\left(", "(").replace(r"\right)", ")").replace(", ", r",\allowbreak ")


def _domain_math(report) -> list:
    return [latex(rel) for rel in domain_relations(report.domain)]


def to_latex(report, sizes: Optional[Mapping] = None, memory=None) -> str:
    """The equations (``align``) and the table (``tabular`` with booktabs rules), ready to paste
    into a document that loads amsmath and booktabs; comments state the domain and the MAC
    convention. With *sizes*, each equation ends with its value and the table has the numbers;
    with *memory*, the table has the memory column (:func:`table`).

    >>> import symshape as ss
    >>> from symshape import zoo
    >>> print(to_latex(ss.trace(zoo.seed_case1(), "1,3,H,W")).splitlines()[1])
    H_{\\text{0}} &= \\left\\lfloor \\frac{H - 7}{2} \\right\\rfloor + 1 \\\\
    """
    parts = [equations(report, sizes)]
    shown = report.at(sizes) if sizes else report
    parts.append(table(shown, memory=memory))
    if report.domain:
        parts.append("% the model runs when: " + ", ".join(domain_summary(report.domain)))
    parts += [f"% {line}" for line in pieces_lines(report)]
    parts.append(f"% {CONVENTION}")
    return "\n".join(p for p in parts if p)


def document(report, sizes: Optional[Mapping] = None, title: Optional[str] = None, memory=None) -> str:
    """A complete LaTeX document (article, geometry, amsmath, booktabs, array, longtable) that
    compiles with pdflatex in one pass: the equations, the table (fitted to the page), the domain
    and the MAC convention."""
    shown = report.at(sizes) if sizes else report
    at = ", ".join(f"${latex(sympy.Symbol(k))} = {v}$" for k, v in (sizes or {}).items())
    body = [r"\documentclass{article}", r"\usepackage[margin=2cm]{geometry}", r"\usepackage{amsmath}",
            r"\usepackage{booktabs}", r"\usepackage{array}", r"\usepackage{longtable}", r"\allowdisplaybreaks",
            r"\begin{document}", f"\\section*{{{escape(title or report.model)}}}",
            f"Input ${shape_latex(report.input_shape)}$" + (f", evaluated at {at}" if at else "") + "."]
    eqs = equations(report, sizes)
    if eqs:
        body += ["", "Output sizes of the layers:", eqs]
    body += ["", r"{\small\renewcommand{\arraystretch}{1.5}", table(shown, env="longtable", memory=memory), "}"]
    if report.domain:
        body += ["", r"{\raggedright The model runs when " + ", ".join(f"${m}$" for m in _domain_math(report))
                 + r".\par}"]
    if report.pieces:
        body += ["", f"The forward branches on the sizes and {len(report.pieces)} paths run; the table is piece 1's.",
                 r"\begin{itemize}"]
        body += [rf"\item piece {i} where " + ", ".join(f"${latex(r)}$" for r in domain_relations(p.branch))
                 + f": output ${shape_latex(p.output_shape)}$, ${latex(p.macs)}$ MACs"
                 for i, p in enumerate(report.pieces, 1)]
        body.append(r"\end{itemize}")
    body += ["", escape(CONVENTION.replace(" x ", " × ")).replace("×", r"$\times$") + ".", r"\end{document}", ""]
    return "\n".join(body)


@report_method(name="to_latex")
def report_latex(report, sizes: Optional[Mapping] = None, document: bool = False, memory=None) -> str:
    """LaTeX: the output-size equations (``align``) and a booktabs table; with
    ``document=True`` a complete document that compiles with pdflatex. With *sizes*, the
    equations end with their values and the table has the numbers; with *memory* (a dtype, or
    True for float32) the table has a column of the bytes each layer saves for backward."""
    return latex_document(report, sizes, memory=memory) if document else to_latex(report, sizes, memory)


latex_document = document


@report_method(name="_repr_latex_")
def repr_latex(report) -> str:
    """For Jupyter: the equations, the output shape, parameters and MACs in one ``aligned``
    display, which MathJax and LaTeX both render."""
    rows = [f"{label} &= {latex(expr)}" for label, expr in size_equations(report)]
    rows += [rf"\text{{output}} &= {shape_latex(report.output_shape)}",
             rf"\text{{parameters}} &= {latex(report.params)}",
             rf"\text{{MACs}} &= {latex(report.macs)}"]
    return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"
