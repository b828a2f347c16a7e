"""The error every user-facing failure of symshape raises, in a module that imports nothing, so
that the ``symshape`` command can name it before it loads torch and sympy. Its public home is
:mod:`symshape.symbols` (and ``symshape.ShapeError``)."""


class ShapeError(ValueError):
    """Every user-facing failure of symshape: a bad spec, a layer that cannot take its input,
    a size outside the model's domain. The message names the layer, the shape that arrived,
    what was expected, and how to fix it."""


ShapeError.__module__ = "symshape.symbols"  # as tracebacks and pickles have always named it
