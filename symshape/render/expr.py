"""Kept for imports written before :mod:`symshape.printing` (the size printer's home)."""
from ..printing import SizePrinter, fmt, grouped  # noqa: F401

__all__ = ["fmt", "SizePrinter", "grouped"]
