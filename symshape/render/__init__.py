"""Rendering reports for people: text tables (and, in time, markdown, LaTeX and JSON)."""
