"""A LaTeX-aware check for generated LaTeX, for machines without pdflatex: balanced braces,
matched environments, \\left/\\right pairs, only known macros, and align rows with one ``&=``."""
from __future__ import annotations

import re

KNOWN_MACROS = {
    "documentclass", "usepackage", "begin", "end", "section", "small", "renewcommand", "arraystretch",
    "toprule", "midrule", "bottomrule", "endhead", "texttt", "text", "textbackslash", "mathit", "mathrm",
    "left", "right", "lfloor", "rfloor", "lceil", "rceil", "frac", "geq", "leq", "neq", "equiv", "pmod", "bmod",
    "min", "max", "cdot", "times", "vert", "operatorname", "_", "&", "%", "$", "#", "{", "}", ",", " ", "\\",
    "allowdisplaybreaks", "setlength", "tabcolsep", "raggedright", "raggedleft", "arraybackslash", "linewidth",
    "allowbreak", "par",
}
ENVIRONMENTS = {"document", "align", "align*", "aligned", "tabular", "longtable"}


class LatexCheckError(AssertionError):
    pass


def check_latex(text: str) -> None:
    """Raise LatexCheckError at the first problem found."""
    body = re.sub(r"(?<!\\)%.*", "", text)  # comments
    plain = re.sub(r"\\[{}]", "", body.replace("\\\\", "  "))  # line breaks, then escaped braces
    depth = 0
    for i, ch in enumerate(plain):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            raise LatexCheckError(f"unbalanced '}}' at {i}: {plain[max(0, i - 40):i + 1]!r}")
    if depth:
        raise LatexCheckError(f"{depth} unclosed '{{'")
    for macro in re.findall(r"\\([A-Za-z]+|.)", body):
        if macro not in KNOWN_MACROS:
            raise LatexCheckError(f"unknown macro \\{macro}")
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", body):
        if env not in ENVIRONMENTS:
            raise LatexCheckError(f"unknown environment {env}")
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            raise LatexCheckError(f"\\end{{{env}}} does not close the open environment")
    if stack:
        raise LatexCheckError(f"unclosed environments: {stack}")
    if len(re.findall(r"\\left\b", body)) != len(re.findall(r"\\right\b", body)):
        raise LatexCheckError("\\left and \\right do not pair up")
    for block in re.findall(r"\\begin\{(align\*?|aligned)\}(.*?)\\end\{\1\}", body, re.S):
        rows = [r for r in re.split(r"\\\\(?=\s*\n|\s*$)", block[1].strip())]
        for row in rows:
            if row.count("&=") != 1 or row.count("&") != 1:
                raise LatexCheckError(f"an align row needs exactly one '&=': {row.strip()!r}")
    for line in body.splitlines():
        if line.count("$") % 2 and "\\$" not in line:
            raise LatexCheckError(f"unbalanced $ in {line!r}")
