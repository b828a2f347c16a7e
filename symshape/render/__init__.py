"""Rendering reports for people: text tables (text), LaTeX (latex), Markdown and HTML (markdown),
JSON (json), step-by-step explanations (explain) and matplotlib plots (plot). Renderers read
reports only: they know nothing of torch. Importing this package attaches the renderers to Report
(``print(rep)``, ``rep.to_latex()``, ``rep.to_json()``, ``rep.explain()``, ``rep.plot()``, ...)."""
from . import explain, json, latex, markdown, plot, text  # noqa: F401  (attach the Report methods)
