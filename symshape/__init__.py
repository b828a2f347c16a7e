"""symshape: symbolic shape reasoning for neural networks.

Closed-form output sizes, flatten sizes, parameter counts and MACs of torch models as sympy
expressions of the input sizes.

>>> import torch.nn as nn
>>> import symshape as ss
>>> H, W = ss.symbols("H W")
>>> rep = ss.trace(nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2)), (1, 3, H, W))
>>> rep.output_shape
(1, 3, floor(H/8), floor(W/8))

The package loads lazily (PEP 562): ``import symshape`` imports neither torch nor sympy, so that
``symshape --help`` starts at once. The first use of any public name (``symshape.trace``,
``from symshape import check``, ``symshape.report``, ...) loads the whole package as one eager
import would, the renderers and solvers that attach themselves to ``Report`` included.
"""
import importlib as _importlib
import sys as _sys
import types as _types

__version__ = "0.1.0"

__all__ = [
    "symbols", "parse_shape", "parse_expr", "trace", "fmt", "register", "Out", "ShapeError",
    "Report", "Layer", "Condition", "Shape", "floor_div", "ceil_div", "mod", "canonical",
    "check", "CheckResult",
    "solve", "SolutionSet", "zoo", "ReceptiveField", "Memory", "Count",
]

#: where each public name lives (a module of this package, and the name there)
_HOMES = {
    "CheckResult": ("verify", "CheckResult"), "check": ("verify", "check"),
    "canonical": ("floors", "canonical"), "ceil_div": ("floors", "ceil_div"), "floor_div": ("floors", "floor_div"),
    "mod": ("floors", "mod"), "fmt": ("printing", "fmt"),
    "Condition": ("report", "Condition"), "Layer": ("report", "Layer"), "Report": ("report", "Report"),
    "Shape": ("report", "Shape"), "ReceptiveField": ("receptive", "ReceptiveField"),
    "Count": ("conventions", "Count"), "Memory": ("memory", "Memory"),
    "Out": ("rules.registry", "Out"), "register": ("rules.registry", "register"),
    "ShapeError": ("symbols", "ShapeError"), "parse_expr": ("symbols", "parse_expr"),
    "parse_shape": ("symbols", "parse_shape"), "symbols": ("symbols", "symbols"), "trace": ("trace", "trace"),
    "SolutionSet": ("sets", "SolutionSet"), "solve": ("solve", "solve"), "zoo": ("zoo", None),
}

#: the modules that attach methods to Report (print(rep), rep.to_latex(), rep.receptive_field(),
#: rep.dynamic_shapes(), rep.memory(), rep.macs_as(), rep.piecewise()) or rules (memory_ops)
_ATTACHING = ("render", "receptive", "export", "memory", "memory_ops", "conventions", "pieces")

_state = {"loaded": False, "loading": False}


def _load() -> None:
    """Import the whole package and bind every public name, once (what ``import symshape`` did
    eagerly before it was lazy)."""
    if _state["loaded"] or _state["loading"]:
        return
    _state["loading"] = True
    try:
        import warnings

        with warnings.catch_warnings():
            # torch warns on import when NumPy is absent; symshape never needs NumPy, so its users need not see it
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch  # noqa: F401
        found = {}
        for module, attr in _HOMES.values():
            mod = _importlib.import_module(f"{__name__}.{module}")
            if attr is not None:
                found[attr] = getattr(mod, attr)
        for module in _ATTACHING:
            _importlib.import_module(f"{__name__}.{module}")
        # bound last: importing the submodules trace, solve and symbols bound the modules to those names
        globals().update(found)
        _state["loaded"] = True
    finally:
        _state["loading"] = False


def __getattr__(name: str):
    if name in _HOMES:
        _load()
        if name in globals():
            return globals()[name]
    elif not name.startswith("__"):
        try:  # a submodule, as `import symshape; symshape.floors` found it when the package loaded eagerly
            return _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Clash:
    """A public function that shares its name with a submodule (``symshape.trace`` the function,
    ``symshape.trace`` the module): importing the submodule binds the module to the package's
    name, so the name is read through this descriptor, which gives the function."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, package, owner=None):
        value = package.__dict__.get(self.name)
        if value is None or isinstance(value, _types.ModuleType):
            _load()
            value = package.__dict__.get(self.name, value)
        if value is None:
            raise AttributeError(f"module {__name__!r} has no attribute {self.name!r}")
        return value

    def __set__(self, package, value):
        package.__dict__[self.name] = value

    def __delete__(self, package):
        del package.__dict__[self.name]


class _Package(_types.ModuleType):
    """The package's module type: the names it shares with its submodules read as the functions."""

    trace = _Clash("trace")
    solve = _Clash("solve")
    symbols = _Clash("symbols")


_sys.modules[__name__].__class__ = _Package
