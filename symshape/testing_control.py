"""Random modules with Python control flow on sizes, for differential testing of the executing front end.

:func:`random_control` writes the source of an ``nn.Module`` whose forward mixes what real models do
with their sizes (symshape/execute.py runs such forwards on symbolic sizes): convolutions and pools,
``x.view(x.size(0), -1)`` and ``x.reshape(n, c, h // 2, 2, w // 2, 2)`` shape arithmetic,
``if h % k != 0: raise ValueError(msg)`` guards, ``assert`` and ``torch._assert`` on sizes, TF "same"
padding computed with ``math.ceil`` and ``max(..., 0)`` (timm's ``pad_same``), ``F.pad`` to a
multiple of a window (Swin's window attention), ``int()`` of fixed sizes, loops over a fixed dim,
comparisons that earlier guards decide (after ``if h < 8: raise``, ``if h >= 4:`` is decided) and
branches whose other side raises, submodules with control flow of their own. Behind flags it also
draws branches where both sides run (symshape answers piecewise: ``rep.pieces``) and ``int()`` of a
symbolic size as the last step (a ShapeError with its exact text).

The module is compiled from its source (:meth:`Control.source` is exactly what runs, line numbers
included), driven only by a ``random.Random``; like :mod:`symshape.testing_graphs`, validity is
decided by torch itself: each drawn step is kept only if the module runs on the meta device at the
reference size.

>>> c = random_control(random.Random(17))
>>> c.spec, c.ref
('N,4,H,W', {'N': 2, 'H': 31, 'W': 31})
>>> print(c.source().splitlines()[17])
        if x.size(0) > 3:
>>> import symshape as ss
>>> rep = ss.trace(c.model(), c.spec)
>>> print(rep.domain[0])
N <= 3  [layer '' (Net): the batch must be at most 3 (the forward of the model (Net) raises otherwise, at <control>:18)]
>>> ss.check(c.model(), rep, sizes=[c.ref, {"N": 4, "H": 31, "W": 31}]).ok
True
"""
from __future__ import annotations

import linecache
import math
import random
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Control", "random_control", "STEP_MAKERS", "TWO_SIDED", "INT_OF_SYMBOLIC", "build"]

TWO_SIDED = "two-sided"
"""Kind of a step whose branch runs on both sides (symshape traces each side: a piecewise report)."""

INT_OF_SYMBOLIC = "int of symbolic"
"""Kind of a last step that calls ``int()`` on a symbolic size (a ShapeError with its exact text)."""

_HELPERS = {
    "same": ["def get_same_padding(x, k, s, d):",
             "    return max((math.ceil(x / s) - 1) * s + (k - 1) * d + 1 - x, 0)"],
    "Conv2dSame": ["class Conv2dSame(nn.Conv2d):",
                   "    def forward(self, x):",
                   "        ih, iw = x.size()[-2:]",
                   "        pad_h = get_same_padding(ih, self.kernel_size[0], self.stride[0], self.dilation[0])",
                   "        pad_w = get_same_padding(iw, self.kernel_size[1], self.stride[1], self.dilation[1])",
                   "        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))",
                   "        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.groups)"],
    "WindowPool": ["class WindowPool(nn.Module):",
                   "    def __init__(self, window, strict):",
                   "        super().__init__()",
                   "        self.window, self.strict = window, strict",
                   "        self.pool = nn.AvgPool2d(window)",
                   "",
                   "    def forward(self, x):",
                   "        h, w = x.shape[-2:]",
                   "        if self.strict and (h % self.window or w % self.window):",
                   "            raise ValueError(f\"{h}x{w} is not a multiple of the window {self.window}\")",
                   "        pad_h, pad_w = -h % self.window, -w % self.window",
                   "        if pad_h or pad_w:",
                   "            x = F.pad(x, (0, pad_w, 0, pad_h))",
                   "        return self.pool(x)"],
}


class Step(NamedTuple):
    """One drawn step: lines for ``__init__``, lines of the forward, helpers it needs, its kind,
    and which sizes are symbolic after it (``(N, H, W)`` as booleans)."""

    init: tuple
    lines: tuple
    kind: str
    sym: tuple
    helpers: tuple = ()


class Control(NamedTuple):
    """A random module: its steps and helpers, the input spec (``"N,3,H,W"``), a size where torch
    runs it, and the file name its source is compiled under."""

    steps: tuple
    helpers: tuple
    spec: str
    ref: dict
    name: str

    def source(self) -> str:
        """The module as Python source: what a reproducer pastes (after ``import math, torch``,
        ``torch.nn as nn``, ``torch.nn.functional as F``)."""
        return _source(self.steps, self.helpers)[0]

    @property
    def kinds(self) -> tuple:
        return tuple(s.kind for s in self.steps)

    @property
    def lines(self) -> tuple:
        """The line (1-based, in :meth:`source`) of each step's first forward line."""
        return _source(self.steps, self.helpers)[1]

    def model(self) -> nn.Module:
        """A fresh instance of the module, compiled from :meth:`source`."""
        return build(self.source(), self.name)()

    def prefix(self) -> "Control":
        """The module without its last step (compiled under another file name)."""
        return self._replace(steps=self.steps[:-1], name=self.name + " prefix")


def build(text: str, name: str = "<control>"):
    """The class ``Net`` defined by *text* (our generated source), compiled under the file *name*,
    whose lines tracebacks and symshape's messages show."""
    lines = text.splitlines(keepends=True)
    linecache.cache[name] = (len(text), None, lines, name)
    scope = {"math": math, "torch": torch, "nn": nn, "F": F}
    exec(compile(text, name, "exec"), scope)  # noqa: S102  (source this module wrote)
    return scope["Net"]


# -- step makers: (rng, state) -> Step or None ---------------------------------------------------
# state: shape (at the reference size), sym (N, H, W symbolic?), k (a counter for names)

class _State(NamedTuple):
    shape: tuple
    sym: tuple
    k: int


def _dim(rng, st):
    """A spatial dim to work on: (index text, name, value at the reference, symbolic?)."""
    d = rng.choice((-2, -1))
    return d, ("height" if d == -2 else "width"), st.shape[d], st.sym[1 if d == -2 else 2]


def _conv(rng, st):
    c = st.shape[1]
    k, s = rng.randint(1, 5), rng.randint(1, 3)
    p = rng.randint(0, k // 2)
    o = rng.randint(1, 6)
    name = f"conv{st.k}"
    return Step((f"self.{name} = nn.Conv2d({c}, {o}, {k}, stride={s}, padding={p})",),
                (f"x = self.{name}(x)",), "conv", st.sym)


def _pool(rng, st):
    k = rng.randint(1, 4)
    s = rng.choice((1, 2, 2, 3))
    p = rng.randint(0, k // 2)
    ceil = rng.random() < 0.4
    fn = rng.choice(("max_pool2d", "avg_pool2d"))
    return Step((), (f"x = F.{fn}(x, {k}, {s}, {p}, ceil_mode={ceil})",), "pool", st.sym)


def _divisors(n, top=8):
    return [m for m in range(2, top + 1) if n % m == 0]


def _guard_mod(rng, st):
    d, what, v, _ = _dim(rng, st)
    ms = _divisors(v)
    if not ms:
        return None
    m = rng.choice(ms)
    form = rng.randrange(4)
    if form == 0:
        lines = (f"if x.shape[{d}] % {m} != 0:",
                 f"    raise ValueError(f\"the {what} {{x.shape[{d}]}} is not a multiple of {m}\")")
    elif form == 1:  # segmentation_models_pytorch's check_input_shape
        lines = ("h, w = x.shape[-2:]",
                 f"if h % {m} != 0 or w % {m} != 0:",
                 f"    raise RuntimeError(f\"Wrong input shape height={{h}}, width={{w}}. Expected image height "
                 f"and width divisible by {m}.\")")
        if st.shape[-2] % m or st.shape[-1] % m:
            return None
    elif form == 2:
        lines = (f"assert x.shape[{d}] % {m} == 0, \"the {what} must be a multiple of {m}\"",)
    else:
        lines = (f"torch._assert(x.shape[{d}] % {m} == 0, \"the {what} must be a multiple of {m}\")",)
    kind = "guard"
    m2 = rng.choice(_divisors(m))
    if form != 1 and rng.random() < 0.5:  # a comparison the guard decides (224 is no multiple of 3, 5, 6, 7)
        act = rng.choice(("x = x + 1", "x = F.pad(x, (1, 0, 1, 0))"))
        lines += (f"if x.shape[{d}] % {m2} == 0:", f"    {act}", "else:", f"    {_other(rng)}")
        kind = "decided mod"
    return Step((), lines, kind, st.sym)


def _other(rng):
    """A branch that must not run: something different from the branch taken."""
    return rng.choice(("x = x * 2", "x = x[..., ::2, :]", "x = F.avg_pool2d(x, 3)", "x = x.flatten(2)"))


def _guard_min(rng, st):
    """``if h < m: raise``, then (often) a comparison the guard decides, both ways round."""
    d, what, v, sym = _dim(rng, st)
    if v < 2:
        return None
    m = rng.randint(2, min(v, 16))
    form = rng.randrange(3)
    if form == 0:
        lines = [f"if x.shape[{d}] < {m}:", f"    raise ValueError(\"the {what} must be at least {m}\")"]
    elif form == 1:
        lines = [f"assert x.shape[{d}] >= {m}, \"the {what} must be at least {m}\""]
    else:
        lines = [f"torch._assert(x.shape[{d}] >= {m}, \"the {what} must be at least {m}\")"]
    kind = "guard"
    if rng.random() < 0.6:
        m2 = rng.randint(1, m)
        act = rng.choice(("x = F.max_pool2d(x, 2, 1, 1)", "x = x + 1", "x = F.pad(x, (1, 1, 1, 1))"))
        if rng.random() < 0.5:
            lines += [f"if x.shape[{d}] >= {m2}:", f"    {act}", "else:", f"    {_other(rng)}"]
        else:
            lines += [f"if x.shape[{d}] < {m2}:", f"    {_other(rng)}", "else:", f"    {act}"]
        kind = "decided"
    return Step((), tuple(lines), kind, st.sym)


def _guard_max(rng, st):
    """``if h > m: raise``, then a comparison the upper bound decides."""
    d, what, v, sym = _dim(rng, st)
    m = v + rng.randint(0, 40)
    m2 = m + rng.randint(0, 20)
    act = rng.choice(("x = x + 1", "x = F.pad(x, (1, 1, 1, 1))"))
    lines = (f"if x.shape[{d}] > {m}:", f"    raise ValueError(\"the {what} must be at most {m}\")",
             f"if x.shape[{d}] <= {m2}:", f"    {act}", "else:", f"    {_other(rng)}")
    return Step((), lines, "upper", st.sym)


def _guard_joint(rng, st):
    """Guards on several sizes: a square input, a size pinned to one value (timm's fixed img_size),
    the product of the sizes bounded (a token budget), the batch bounded; then a comparison they
    decide."""
    n, c, h, w = st.shape
    form = rng.randrange(4)
    if form == 0:
        if h != w:
            return None
        lines = ["if x.shape[-2] != x.shape[-1]:",
                 "    raise ValueError(f\"the input must be square, not {x.shape[-2]}x{x.shape[-1]}\")"]
        test = "x.shape[-2] == x.shape[-1]"
    elif form == 1:
        d, what, v, sym = _dim(rng, st)
        lines = [f"torch._assert(x.shape[{d}] == {v}, f\"the {what} must be {v}, not {{x.shape[{d}]}}\")"]
        test = f"x.shape[{d}] * 2 == {2 * v}"
    elif form == 2:
        m = h * w + rng.randint(0, 64)
        lines = [f"if x.shape[-2] * x.shape[-1] > {m}:", f"    raise ValueError(\"at most {m} positions\")"]
        test = f"x.shape[-2] * x.shape[-1] <= {m + rng.randint(0, 8)}"
    else:
        m = n + rng.randint(0, 3)
        lines = [f"if x.size(0) > {m}:", f"    raise ValueError(\"the batch must be at most {m}\")"]
        test = f"x.size(0) <= {m}"
    if rng.random() < 0.6:
        lines += [f"if {test}:", "    x = x + 1", "else:", f"    {_other(rng)}"]
    return Step((), tuple(lines), "joint", st.sym)


def _flatten(rng, st):
    """The last step: ``x.view(x.size(0), -1)`` or ``torch.flatten(x, 1)``."""
    return Step((), (rng.choice(("x = x.view(x.size(0), -1)", "x = torch.flatten(x, 1)")),), "flatten", st.sym)


def _one_sided(rng, st):
    """A branch whose other side raises: the domain is the branch's condition."""
    d, what, v, sym = _dim(rng, st)
    if rng.random() < 0.5:
        m = rng.randint(2, 4)
        if v < m:
            return None
        lines = (f"if x.shape[{d}] >= {m}:", f"    x = F.max_pool2d(x, {m})", "else:",
                 f"    raise ValueError(\"the {what} is too small to pool by {m}\")")
    else:
        if st.shape[-2] % 2 or st.shape[-1] % 2:
            return None
        lines = ("n, c, h, w = x.shape",
                 "if h % 2 == 0 and w % 2 == 0:",
                 "    x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)",
                 "else:",
                 "    raise ValueError(f\"odd size {h}x{w}\")")
    return Step((), lines, "one-sided", st.sym)


def _pad_same(rng, st):
    """timm's Conv2dSame: TF 'same' padding from the input size, then an unpadded conv."""
    c = st.shape[1]
    k, s = rng.randint(1, 5), rng.randint(1, 3)
    o = rng.randint(1, 6)
    name = f"conv{st.k}"
    lines = ("ih, iw = x.size()[-2:]",
             f"pad_h = get_same_padding(ih, {k}, {s}, 1)",
             f"pad_w = get_same_padding(iw, {k}, {s}, 1)",
             "x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))",
             f"x = self.{name}(x)")
    return Step((f"self.{name} = nn.Conv2d({c}, {o}, {k}, stride={s})",), lines, "same", st.sym, ("same",))


def _submodule(rng, st):
    """A submodule with control flow of its own: timm's Conv2dSame, or a window pool that pads to
    a multiple of its window (``if pad_h or pad_w``: decided only where the sizes are fixed) or
    refuses sizes that are not multiples."""
    c = st.shape[1]
    name = f"block{st.k}"
    if rng.random() < 0.5:
        k, s = rng.randint(1, 5), rng.randint(1, 3)
        init = f"self.{name} = Conv2dSame({c}, {rng.randint(1, 6)}, {k}, stride={s})"
        return Step((init,), (f"x = self.{name}(x)",), "submodule", st.sym, ("same", "Conv2dSame"))
    m = rng.randint(2, 4)
    strict = rng.random() < 0.5 or st.sym[1] or st.sym[2]  # padding where both sides run: strict
    init = f"self.{name} = WindowPool({m}, strict={strict})"
    return Step((init,), (f"x = self.{name}(x)",), "submodule", st.sym, ("WindowPool",))


def _pad_multiple(rng, st):
    """Pad to a multiple of a window (Swin), then (often) partition into windows."""
    m = rng.randint(2, 7)
    if rng.random() < 0.5:
        lines = ["_, _, h, w = x.shape", f"pad_h = ({m} - h % {m}) % {m}", f"pad_w = ({m} - w % {m}) % {m}"]
    else:
        lines = ["_, _, h, w = x.shape", f"pad_h = math.ceil(h / {m}) * {m} - h",
                 f"pad_w = max(math.ceil(w / {m}) * {m} - w, 0)"]
    lines.append("x = F.pad(x, (0, pad_w, 0, pad_h))")
    if rng.random() < 0.6 and st.shape[1] * m * m <= 64:
        lines += ["n, c, hp, wp = x.shape",
                  f"x = x.view(n, c, hp // {m}, {m}, wp // {m}, {m}).permute(0, 1, 3, 5, 2, 4)",
                  f"x = x.reshape(n, c * {m * m}, hp // {m}, wp // {m})"]
    return Step((), tuple(lines), "pad multiple", st.sym)


def _halves(rng, st):
    """Space to depth by reshape: torch raises at odd sizes (the domain says even)."""
    if st.shape[1] > 16:
        return None
    lines = ("n, c, h, w = x.shape",
             "x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)")
    return Step((), lines, "halves", st.sym)


def _crop_multiple(rng, st):
    m = rng.randint(2, 6)
    lines = (f"x = x[:, :, :x.shape[-2] - x.shape[-2] % {m}, :x.shape[-1] - x.shape[-1] % {m}]",)
    return Step((), lines, "crop", st.sym)


def _int_fixed(rng, st):
    """``int()`` of fixed sizes: the channels, or the spatial size after an adaptive pool."""
    if not st.sym[1] and not st.sym[2] and st.shape[-1] >= 2 and rng.random() < 0.5:
        return Step((), ("x = x[..., :int(x.shape[-1] // 2)]",), "int fixed", st.sym)
    if st.shape[1] < 2:
        return None
    lines = ("c = int(x.shape[1] // 2)", "x = torch.cat([x[:, :c], x[:, c:2 * c] * 2], 1)")
    return Step((), lines, "int fixed", st.sym)


def _loop(rng, st):
    if st.shape[1] > 8:
        return None
    if rng.random() < 0.5:
        lines = ("for i in range(x.shape[1]):", "    x = x + x[:, i:i + 1]")
    else:
        lines = ("x = torch.cat([x[:, i:i + 1] * (i + 1) for i in range(x.shape[1])], 1)",)
    return Step((), lines, "loop", st.sym)


def _adaptive(rng, st):
    if rng.random() < 0.5:
        s = rng.randint(2, 4)
        lines = (f"x = F.adaptive_avg_pool2d(x, (math.ceil(x.shape[-2] / {s}), math.ceil(x.shape[-1] / {s})))",)
        return Step((), lines, "adaptive ceil", st.sym)
    o = rng.randint(1, 5)
    return Step((), (f"x = F.adaptive_avg_pool2d(x, {o})",), "adaptive", (st.sym[0], False, False))


def _head(rng, st):
    """``x.view(x.size(0), -1)`` into a Linear where the sizes are fixed, back to 4 dims."""
    if st.sym[1] or st.sym[2]:
        return None
    flat = st.shape[1] * st.shape[2] * st.shape[3]
    o = rng.randint(1, 8)
    name = f"fc{st.k}"
    return Step((f"self.{name} = nn.Linear({flat}, {o})",),
                (f"x = self.{name}(x.view(x.size(0), -1))[:, :, None, None]",), "head", st.sym)


def _two_sided(rng, st):
    d, what, v, sym = _dim(rng, st)
    if not sym:
        return None
    t = max(2, v + rng.randint(-4, 4))
    lines = (f"if x.shape[{d}] >= {t}:", "    x = F.max_pool2d(x, 2, 1)", "else:", "    x = x * 2")
    return Step((), lines, TWO_SIDED, st.sym)


def _int_symbolic(rng, st):
    d, what, v, sym = _dim(rng, st)
    if not sym:
        return None
    return Step((), (f"x = x[..., :int(x.shape[{d}])]" if d == -1 else f"x = x[:, :, :int(x.shape[{d}])]",),
                INT_OF_SYMBOLIC, st.sym)


STEP_MAKERS: dict = {
    "conv": (_conv, 3), "pool": (_pool, 3), "guard mod": (_guard_mod, 3), "guard min": (_guard_min, 3),
    "guard max": (_guard_max, 1), "joint": (_guard_joint, 2), "one-sided": (_one_sided, 2), "same": (_pad_same, 2),
    "pad multiple": (_pad_multiple, 2), "submodule": (_submodule, 2), "halves": (_halves, 1), "crop": (_crop_multiple, 1),
    "int fixed": (_int_fixed, 1), "loop": (_loop, 1), "adaptive": (_adaptive, 1), "head": (_head, 1),
}
"""name -> (maker(rng, state) -> Step or None, weight)."""

_FLAGGED = {TWO_SIDED: _two_sided, INT_OF_SYMBOLIC: _int_symbolic}
_LIMIT = 400_000


def _source(steps, helpers) -> tuple:
    """The module's source, and the line of each step's first forward line."""
    lines = []
    for h in helpers:
        lines += _HELPERS[h] + [""]
    lines += ["class Net(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        {t}" for s in steps for t in s.init]
    lines += ["", "    def forward(self, x):"]
    starts = []
    for s in steps:
        starts.append(len(lines) + 1)
        lines += [f"        {t}" for t in s.lines]
    lines.append("        return x")
    return "\n".join(lines) + "\n", tuple(starts)


def _runs(text, name, shape) -> Optional[tuple]:
    """The output shape on meta at ``shape``, or None where torch raises."""
    try:
        model = build(text, name)().to("meta")
        with torch.no_grad():
            out = model(torch.empty(shape, device="meta"))
    except Exception:  # the step does not run at the reference size: the caller draws another
        return None
    return tuple(out.shape) if isinstance(out, torch.Tensor) else None


def random_control(rng: random.Random, max_steps: int = 6, two_sided: bool = False,
                   int_of_symbolic: bool = False, name: Optional[str] = None) -> Control:
    """A random module valid (in torch, on meta) at its reference size.

    The input is ``(B, C, H, W)``, the batch 1, 2 or a symbol N, channels 1 to 4, H and W 8 to 64
    at the reference. Up to ``max_steps`` steps are drawn from :data:`STEP_MAKERS` (by weight),
    each kept only if torch runs the module with it at the reference size with 4 dims, no empty dim
    and at most 400,000 elements. With ``two_sided`` a step may branch with both sides running
    (:data:`TWO_SIDED`); with ``int_of_symbolic`` the last step may be ``int()`` of a symbolic size
    (:data:`INT_OF_SYMBOLIC`, a quarter of the modules); else it is sometimes a flatten to
    ``(N, -1)``. *name* is the file name the source is compiled under.

    >>> [random_control(random.Random(s)).source() for s in range(3)] == [random_control(random.Random(s)).source() for s in range(3)]
    True
    """
    batch = rng.choice(("1", "2", "N"))
    c = rng.randint(1, 4)
    ref = {"N": rng.randint(1, 3)} if batch == "N" else {}
    ref["H"] = rng.randint(8, 64)
    ref["W"] = ref["H"] if rng.random() < 0.3 else rng.randint(8, 64)
    spec = f"{batch},{c},H,W"
    shape = (ref.get("N", 1 if batch == "N" else int(batch)), c, ref["H"], ref["W"])
    name = name or "<control>"
    makers = dict(STEP_MAKERS)
    if two_sided:
        makers[TWO_SIDED] = (_two_sided, 1)
    keys, weights = zip(*((k, w) for k, (_, w) in makers.items()))
    steps, helpers = [], []
    st = _State(shape, (batch == "N", True, True), 0)
    for _ in range(rng.randint(1, max_steps)):
        for _attempt in range(8):
            step = makers[rng.choices(keys, weights)[0]][0](rng, st)
            if step is None:
                continue
            hs = helpers + [h for h in step.helpers if h not in helpers]
            out = _runs(_source(steps + [step], hs)[0], name, shape)
            if out is not None and len(out) == 4 and min(out) >= 1 and math.prod(out) <= _LIMIT:
                steps.append(step)
                helpers = hs
                st = _State(out, step.sym, st.k + 1)
                break
    last = rng.random()
    if int_of_symbolic and last < 0.25 or last > 0.85:
        step = (_int_symbolic if last < 0.25 else _flatten)(rng, st)
        if step is not None and _runs(_source(steps + [step], helpers)[0], name, shape) is not None:
            steps.append(step)
    assert _runs(_source(steps, helpers)[0], name, shape) is not None, "torch must run every module built"
    return Control(tuple(steps), tuple(helpers), spec, ref, name)
