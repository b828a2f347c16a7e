"""Rendering reports for people: text tables (text), LaTeX (latex), Markdown and HTML (markdown),
JSON (json), step-by-step explanations (explain) and matplotlib plots (plot). Renderers read
reports only: they know nothing of torch."""
