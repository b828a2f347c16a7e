"""Random graphs over the tensor-op and functional layer, for differential testing against torch.

:func:`random_graph` builds an ``nn.Module`` whose forward chains tensor methods and
``torch.nn.functional`` calls (broadcasting with size-1 dims, expand, repeat, tile, view and
reshape with -1 and size arithmetic, permute, slicing with steps and negative bounds, unfold,
chunk and split, cat and stack, interpolate, pad, einsum, matmul, attention, arange position
tables and fixed-size parameters broadcast against the activations), driven only by a
``random.Random``. Like :func:`symshape.testing.random_network`, validity is decided by torch
itself: each drawn step is kept only if the graph so far runs on the meta device at the reference
size. Each step carries the source line it runs, so a failure prints as a reproducer
(:meth:`GraphNet.source`).

>>> net = random_graph(random.Random(3))
>>> net.spec, net.ref
('N,2,L', {'N': 3, 'L': 12})
>>> print(net.model.source().split("x0 = x")[1].splitlines()[1])
        a, b = x.chunk(2, 2); x = b
>>> import symshape as ss
>>> ss.check(net.model, ss.trace(net.model, net.spec), sizes=[net.ref]).ok
True
"""
from __future__ import annotations

import copy
import random
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphNet", "Graph", "random_graph", "STEP_MAKERS"]


class Step(NamedTuple):
    """One line of a forward: its source text and the function ``(module, x, x0) -> x`` it runs."""

    text: str
    fn: Callable


class GraphNet(nn.Module):
    """A forward that runs its steps in order on ``x`` (``x0`` is the input, for skips)."""

    def __init__(self, steps=(), params=None):
        super().__init__()
        self.steps = list(steps)
        self.param_text = {}
        for name, (text, value) in (params or {}).items():
            self.add_param(name, text, value)

    def add_param(self, name, text, value):
        if value.is_floating_point():
            self.register_parameter(name, nn.Parameter(value, requires_grad=False))
        else:
            self.register_buffer(name, value)
        self.param_text[name] = text

    def forward(self, x):
        x0 = x
        for step in self.steps:
            x = step.fn(self, x, x0)
        return x

    def source(self) -> str:
        """The module as Python source: what a reproducer pastes."""
        lines = ["class Net(nn.Module):", "    def __init__(self):", "        super().__init__()"]
        for name, text in self.param_text.items():
            kind = "register_buffer" if text.startswith("buffer:") else None
            if kind:
                lines.append(f"        self.register_buffer({name!r}, {text[len('buffer:'):]})")
            else:
                lines.append(f"        self.{name} = nn.Parameter({text})")
        lines += ["", "    def forward(self, x):", "        x0 = x"]
        lines += [f"        {s.text}" if "; x = " in s.text else f"        x = {s.text}" for s in self.steps]
        lines.append("        return x")
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return "; ".join(s.text for s in self.steps)


class Graph(NamedTuple):
    """A random graph: the model, its input spec (``"2,5,H,W"``) and a size where torch runs it."""

    model: GraphNet
    spec: str
    ref: dict


def _idx(d, r):
    """Source for indexing dim ``d`` of a rank-``r`` tensor: leading ``:`` entries."""
    return ", ".join([":"] * d)


def _sl(a, b, s):
    text = ("" if a is None else str(a)) + ":" + ("" if b is None else str(b))
    return text + (f":{s}" if s != 1 else "")


# Each maker: (rng, shape at the reference size, model) -> Step or None. ``model`` lets a maker add
# a fixed-size parameter. Dims are drawn relative to the current rank.

def _broadcast_reduce(rng, shape, m):
    r = len(shape)
    dims = tuple(sorted(rng.sample(range(r), rng.randint(1, r))))
    red, op = rng.choice(("mean", "amax", "sum")), rng.choice(("+", "*", "-"))
    return Step(f"x {op} x.{red}(dim={dims}, keepdim=True)",
                lambda m, x, x0: _binop(op, x, getattr(x, red)(dim=dims, keepdim=True)))


def _binop(op, a, b):
    return a + b if op == "+" else a * b if op == "*" else a - b


def _expand_as(rng, shape, m):
    r = len(shape)
    if r == 4 and rng.random() < 0.5:
        return Step("x * F.adaptive_avg_pool2d(x, 1).expand_as(x)",
                    lambda m, x, x0: x * F.adaptive_avg_pool2d(x, 1).expand_as(x))
    d = rng.randrange(r)
    extra = rng.choice((0, 0, 1, 3))
    sizes = ["-1"] * r
    sizes[d] = f"x.size({d}) + {extra}" if extra else f"x.size({d})"
    lead = rng.random() < 0.2 and r < 5
    text = f"x.narrow({d}, 0, 1).expand({'2, ' if lead else ''}{', '.join(sizes)})"

    def fn(m, x, x0):
        args = [-1] * r
        args[d] = x.size(d) + extra if extra else x.size(d)
        return x.narrow(d, 0, 1).expand(*([2] if lead else []), *args)
    return Step(text, fn)


def _repeat(rng, shape, m):
    r = len(shape)
    if rng.random() < 0.5:
        reps = tuple(rng.choice((1, 1, 2, 3)) for _ in range(r + (1 if rng.random() < 0.2 and r < 5 else 0)))
        return Step(f"x.repeat{reps}", lambda m, x, x0: x.repeat(*reps))
    reps = tuple(rng.choice((1, 2, 3)) for _ in range(rng.randint(1, min(5, r + 1))))
    return Step(f"x.tile({reps})", lambda m, x, x0: x.tile(reps))


def _contiguous(x, fresh):
    return x if fresh else x.contiguous()


def _reshape(rng, shape, m):
    r = len(shape)
    pick = rng.randrange(6)
    if pick == 0 and r >= 3:
        s = rng.randrange(r - 1)
        e = rng.randrange(s + 1, r)
        return Step(f"x.flatten({s}, {e})", lambda m, x, x0: x.flatten(s, e))
    if pick == 1:
        k = rng.choice((2, 3, 4))
        keep = rng.randint(1, r - 1) if r > 1 else 1
        head = ", ".join(f"x.size({i})" for i in range(keep))
        return Step(f"x.reshape({head}, {k}, -1)",
                    lambda m, x, x0: x.reshape(*[x.size(i) for i in range(keep)], k, -1))
    if pick == 2 and r >= 3:
        d = rng.randrange(r - 1)
        head = [f"x.size({i})" for i in range(d)]
        text = ", ".join(head + [f"x.size({d}) * x.size({d + 1})"] + [f"x.size({i})" for i in range(d + 2, r)])
        return Step(f"x.contiguous().view({text})", lambda m, x, x0: x.contiguous().view(
            *[x.size(i) for i in range(d)], x.size(d) * x.size(d + 1), *[x.size(i) for i in range(d + 2, r)]))
    if pick == 3 and r < 5:
        d = rng.randrange(r)
        k = rng.choice((2, 3))
        return Step(f"x.unflatten({d}, ({k}, -1))", lambda m, x, x0: x.unflatten(d, (k, -1)))
    if pick == 4 and r >= 2:
        return Step("x.reshape(x.size(0), -1)", lambda m, x, x0: x.reshape(x.size(0), -1))
    if pick == 5 and r >= 3:
        return Step("x.reshape(x.size(0), x.size(1) // 2, -1)" if shape[1] > 1 else "x.reshape(-1, x.size(-1))",
                    (lambda m, x, x0: x.reshape(x.size(0), x.size(1) // 2, -1)) if shape[1] > 1
                    else (lambda m, x, x0: x.reshape(-1, x.size(-1))))
    return None


def _permute(rng, shape, m):
    r = len(shape)
    if r < 2:
        return None
    if rng.random() < 0.5:
        a, b = rng.sample(range(-r, r), 2)
        return Step(f"x.transpose({a}, {b})", lambda m, x, x0: x.transpose(a, b))
    perm = list(range(r))
    rng.shuffle(perm)
    perm = tuple(perm)
    return Step(f"x.permute{perm}", lambda m, x, x0: x.permute(*perm))


def _slice(rng, shape, m):
    r = len(shape)
    d = rng.randrange(r)
    bound = lambda: rng.choice((None, None, 0, 1, 2, -1, -2, -3, 3, 5))  # noqa: E731
    a, b, s = bound(), bound(), rng.choice((1, 1, 2, 3))
    if rng.random() < 0.2:
        key = (slice(None),) * d + (rng.choice((0, -1)),)
        text = ", ".join([":"] * d + [str(key[-1])])
    else:
        key = (slice(None),) * d + (slice(a, b, s),)
        text = ", ".join([":"] * d + [_sl(a, b, s)])
    if rng.random() < 0.3:
        key, text = (Ellipsis, slice(a, b, s)), f"..., {_sl(a, b, s)}"
    return Step(f"x[{text}]", lambda m, x, x0: x[key])


def _unfold(rng, shape, m):
    r = len(shape)
    if r == 4 and rng.random() < 0.4:
        k, s, p = rng.randint(1, 3), rng.randint(1, 3), rng.randint(0, 1)
        return Step(f"F.unfold(x, {k}, padding={p}, stride={s})",
                    lambda m, x, x0: F.unfold(x, k, padding=p, stride=s))
    if r >= 5:
        return None
    d, size, step = rng.randrange(r), rng.randint(1, 4), rng.randint(1, 3)
    return Step(f"x.unfold({d}, {size}, {step})", lambda m, x, x0: x.unfold(d, size, step))


def _two(parts):
    a, b = parts  # unpacked as people write it: torch raises where chunk gives another number of pieces
    return a, b


def _three(parts):
    a, b, c = parts
    return a, b, c


def _chunk(rng, shape, m):
    r = len(shape)
    d = rng.randrange(r)
    pick = rng.randrange(4)
    if pick == 0:
        k, i = rng.choice((2, 3)), rng.choice((0, -1))
        names = ("a, b", "a, b, c")[k - 2]
        take = (_two, _three)[k - 2]
        return Step(f"{names} = x.chunk({k}, {d}); x = {names.split(', ')[i]}", lambda m, x, x0: take(x.chunk(k, d))[i])
    if pick == 1:
        s, i = rng.randint(1, 4), rng.choice((0, -1))
        return Step(f"x.split({s}, {d})[{i}]", lambda m, x, x0: x.split(s, d)[i])
    if pick == 2:
        return Step(f"a, b = x.chunk(2, {d}); x = a * b", lambda m, x, x0: _mul(*_two(x.chunk(2, d))))
    return Step(f"x.tensor_split(3, {d})[1]", lambda m, x, x0: x.tensor_split(3, d)[1])


def _mul(a, b):
    return a * b


def _cat(rng, shape, m):
    r = len(shape)
    d = rng.randrange(-r, r)
    pick = rng.randrange(4)
    if pick == 0:
        return Step(f"torch.cat([x, x0], {d})", lambda m, x, x0: torch.cat([x, x0], d))
    if pick == 1:
        return Step(f"torch.cat([x, x.flip({d})[{_idx(d % r, r)}{', ' if d % r else ''}1:]], {d})",
                    lambda m, x, x0: torch.cat([x, x.flip(d)[(slice(None),) * (d % r) + (slice(1, None),)]], d))
    if pick == 2 and r < 5:
        e = rng.randrange(-r - 1, r + 1)
        return Step(f"torch.stack([x, x * 2], {e})", lambda m, x, x0: torch.stack([x, x * 2], e))
    return Step(f"x + x0", lambda m, x, x0: x + x0)


def _interpolate(rng, shape, m):
    r = len(shape)
    if r not in (3, 4, 5):
        return None
    nd = r - 2
    mode = rng.choice(("nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]))
    extra = "" if mode.startswith("nearest") else f", align_corners={rng.random() < 0.5}"
    pick = rng.randrange(3)
    if pick == 0:
        size = tuple(rng.randint(1, 12) for _ in range(nd))
        return Step(f"F.interpolate(x, size={size}, mode={mode!r}{extra})",
                    lambda m, x, x0: F.interpolate(x, size=size, mode=mode, **_ac(extra)))
    if pick == 1:
        mul, add = rng.choice((1, 2)), rng.choice((-1, 0, 1))
        text = ", ".join(f"x.size({i}) * {mul} + {add}" for i in range(2, r))
        return Step(f"F.interpolate(x, size=({text},), mode={mode!r}{extra})",
                    lambda m, x, x0: F.interpolate(x, size=tuple(x.size(i) * mul + add for i in range(2, r)),
                                                   mode=mode, **_ac(extra)))
    scale = rng.choice((2, 0.5, 1.5, 0.7, 3, 0.33, 2.5))
    rsf = rng.choice((None, True))
    return Step(f"F.interpolate(x, scale_factor={scale}, mode={mode!r}{extra}, recompute_scale_factor={rsf})",
                lambda m, x, x0: F.interpolate(x, scale_factor=scale, mode=mode, recompute_scale_factor=rsf,
                                               **_ac(extra)))


def _ac(extra):
    return {"align_corners": "True" in extra} if extra else {}


def _pad(rng, shape, m):
    r = len(shape)
    mode = rng.choice(("constant", "constant", "reflect", "replicate", "circular"))
    n = rng.randint(1, r) if mode == "constant" else max(1, min(r - 2, 3))
    low = -2 if mode in ("constant", "circular") else 0
    pads = tuple(rng.randint(low, 3) for _ in range(2 * n))
    if mode == "constant":
        return Step(f"F.pad(x, {pads})", lambda m, x, x0: F.pad(x, pads))
    return Step(f"F.pad(x, {pads}, mode={mode!r})", lambda m, x, x0: F.pad(x, pads, mode=mode))


_LETTERS = "abcdefgh"


def _products(rng, shape, m):
    r = len(shape)
    if r < 2:
        return None
    pick = rng.randrange(6)
    if pick == 0:
        return Step("x @ x.transpose(-1, -2)", lambda m, x, x0: x @ x.transpose(-1, -2))
    if pick == 1:
        return Step("x.transpose(-1, -2) @ x", lambda m, x, x0: x.transpose(-1, -2) @ x)
    if pick == 2:
        a = _LETTERS[:r]
        b = a[:-1] + "z"
        out = a[:-2] + a[-2] + "z" if rng.random() < 0.5 else a[:-2] + "z"
        eq = f"{a},{b}->{out}"
        return Step(f"torch.einsum({eq!r}, x, x)", lambda m, x, x0: torch.einsum(eq, x, x))
    if pick == 3 and r >= 3:
        causal = rng.random() < 0.3
        return Step(f"F.scaled_dot_product_attention(x, x, x, is_causal={causal})",
                    lambda m, x, x0: F.scaled_dot_product_attention(x, x, x, is_causal=causal))
    if pick == 4:
        name = f"w{len(m.param_text)}"
        k = rng.randint(1, 6)
        m.add_param(name, f"torch.zeros({shape[-1]}, {k})", torch.zeros(shape[-1], k))
        return Step(f"x @ self.{name}", lambda m, x, x0: x @ getattr(m, name))
    if pick == 5:
        name = f"w{len(m.param_text)}"
        k = rng.randint(1, 6)
        m.add_param(name, f"torch.zeros({k}, {shape[-1]})", torch.zeros(k, shape[-1]))
        return Step(f"F.linear(x, self.{name})", lambda m, x, x0: F.linear(x, getattr(m, name)))
    return None


def _positions(rng, shape, m):
    r = len(shape)
    pick = rng.randrange(4)
    if pick == 0:
        return Step("x + torch.arange(x.size(-1), device=x.device, dtype=x.dtype)",
                    lambda m, x, x0: x + torch.arange(x.size(-1), device=x.device, dtype=x.dtype))
    if pick == 1:
        return Step("x[..., torch.arange(x.size(-1) - 1, -1, -1, device=x.device)]",
                    lambda m, x, x0: x[..., torch.arange(x.size(-1) - 1, -1, -1, device=x.device)])
    if pick == 2:
        s = rng.choice((2, 3))
        return Step(f"x[..., torch.arange(0, x.size(-1), {s}, device=x.device)]",
                    lambda m, x, x0: x[..., torch.arange(0, x.size(-1), s, device=x.device)])
    if r < 2:
        return None
    return Step("x + (torch.arange(x.size(-1), device=x.device)[:, None] - "
                "torch.arange(x.size(-1), device=x.device)[None, :]).to(x.dtype)",
                lambda m, x, x0: x + (torch.arange(x.size(-1), device=x.device)[:, None]
                                      - torch.arange(x.size(-1), device=x.device)[None, :]).to(x.dtype))


def _fixed_param(rng, shape, m):
    """A fixed-size parameter (a position embedding, a relative position bias) broadcast against x."""
    r = len(shape)
    name = f"p{len(m.param_text)}"
    if r >= 2 and shape[-1] == shape[-2] and rng.random() < 0.5:
        n = shape[-1]
        idx = f"i{len(m.param_text)}"
        m.add_param(name, f"torch.zeros({2 * n - 1})", torch.zeros(2 * n - 1))
        text = f"torch.arange({n})[:, None] - torch.arange({n})[None, :] + {n - 1}"
        m.add_param(idx, "buffer:" + text, torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1)
        return Step(f"x + self.{name}[self.{idx}]", lambda m, x, x0: x + getattr(m, name)[getattr(m, idx)])
    k = rng.randint(1, r)
    dims = tuple(1 if rng.random() < 0.3 else d for d in shape[r - k:])
    m.add_param(name, f"torch.zeros{dims}", torch.zeros(dims))
    if r >= 3 and rng.random() < 0.3:  # a bias given to attention as its mask (timm's Attention2d)
        return Step(f"F.scaled_dot_product_attention(x, x, x, attn_mask=self.{name})",
                    lambda m, x, x0: F.scaled_dot_product_attention(x, x, x, attn_mask=getattr(m, name)))
    return Step(f"x + self.{name}", lambda m, x, x0: x + getattr(m, name))


def _windows(rng, shape, m):
    r = len(shape)
    if r not in (3, 4):
        return None
    nd = r - 2
    k, s = rng.randint(1, 3), rng.randint(1, 3)
    pick = rng.randrange(4)
    if pick == 0:
        ceil = rng.random() < 0.5
        p = rng.randint(0, k // 2)
        return Step(f"F.max_pool{nd}d(x, {k}, {s}, {p}, ceil_mode={ceil})",
                    lambda m, x, x0: getattr(F, f"max_pool{nd}d")(x, k, s, p, ceil_mode=ceil))
    if pick == 1:
        o = rng.randint(1, 4)
        return Step(f"F.adaptive_avg_pool{nd}d(x, {o})", lambda m, x, x0: getattr(F, f"adaptive_avg_pool{nd}d")(x, o))
    if pick == 2 and nd == 1:
        return Step("F.avg_pool1d(x, x.shape[-1])", lambda m, x, x0: F.avg_pool1d(x, x.shape[-1]))
    name = f"w{len(m.param_text)}"
    c = shape[1]
    out = rng.randint(1, 6)
    wshape = (out, c) + (k,) * nd
    m.add_param(name, f"torch.zeros{wshape}", torch.zeros(wshape))
    p = rng.randint(0, 1)
    return Step(f"F.conv{nd}d(x, self.{name}, stride={s}, padding={p})",
                lambda m, x, x0: getattr(F, f"conv{nd}d")(x, getattr(m, name), stride=s, padding=p))


def _misc(rng, shape, m):
    r = len(shape)
    d = rng.randrange(r)
    pick = rng.randrange(6)
    if pick == 0:
        return Step(f"x.softmax({d})", lambda m, x, x0: x.softmax(d))
    if pick == 1:
        return Step(f"x.mean({d})", lambda m, x, x0: x.mean(d))
    if pick == 2 and r < 5:
        return Step(f"x.unsqueeze({d})", lambda m, x, x0: x.unsqueeze(d))
    if pick == 3:
        return Step(f"x.squeeze({d})", lambda m, x, x0: x.squeeze(d))
    if pick == 4:
        return Step(f"x.roll(1, {d})", lambda m, x, x0: x.roll(1, d))
    return Step("F.gelu(x)", lambda m, x, x0: F.gelu(x))


STEP_MAKERS: dict = {
    "broadcast": (_broadcast_reduce, 2), "expand": (_expand_as, 2), "repeat": (_repeat, 1),
    "reshape": (_reshape, 3), "permute": (_permute, 2), "slice": (_slice, 3), "unfold": (_unfold, 1),
    "chunk": (_chunk, 2), "cat": (_cat, 2), "interpolate": (_interpolate, 2), "pad": (_pad, 2),
    "products": (_products, 2), "positions": (_positions, 1), "fixed_param": (_fixed_param, 2),
    "windows": (_windows, 2), "misc": (_misc, 1),
}
"""name -> (maker(rng, shape at the reference size, model) -> Step or None, weight)."""

_SPECS = (("N", "C", "L"), ("N", "C", "H", "W"), ("N", "L", "D"))
_LIMIT = 200_000


def _out_shape(model, shape) -> Optional[tuple]:
    """The output shape on meta at ``shape``, or None when torch raises (or the output is not a tensor)."""
    try:
        with torch.no_grad():
            out = copy.deepcopy(model).to("meta")(torch.empty(shape, device="meta"))
    except Exception:  # torch rejects the step: the caller draws another
        return None
    return tuple(out.shape) if isinstance(out, torch.Tensor) else None


def random_graph(rng: random.Random, max_steps: int = 6) -> Graph:
    """A random graph valid (in torch, on meta) at its reference size.

    The input is ``(B, C, L)``, ``(B, C, H, W)`` (with ``H = W`` sometimes) or tokens ``(B, L, D)``,
    the batch 1, 2 or a symbol N, fixed dims 1 to 6, sizes 1 to 16 at the reference. Up to
    ``max_steps`` steps are drawn from :data:`STEP_MAKERS` (by weight); each is kept only if torch
    runs the graph with it at the reference size with rank 1 to 5, no empty dim and at most
    200,000 elements.

    >>> g = random_graph(random.Random(0), max_steps=3)
    >>> len(g.model.steps) <= 3
    True
    >>> [random_graph(random.Random(s)).spec for s in range(5)] == [random_graph(random.Random(s)).spec for s in range(5)]
    True
    """
    dims = rng.choice(_SPECS)
    batch = rng.choice(("1", "2", "N"))
    ref, spec = {}, []
    for i, d in enumerate(dims):
        if i == 0:
            spec.append(batch)
            if batch == "N":
                ref["N"] = rng.randint(1, 3)
        elif d in ("C", "D"):
            spec.append(str(rng.randint(1, 6)))
        else:
            ref[d] = rng.randint(1, 16)
            spec.append(d)
    if "H" in ref and rng.random() < 0.4:
        ref["W"] = ref["H"]
    spec = ",".join(spec)
    shape = tuple(ref[d] if d in ref else int(d) for d in spec.split(","))
    names, weights = zip(*((k, w) for k, (_, w) in STEP_MAKERS.items()))
    model = GraphNet()
    now = shape
    for _ in range(rng.randint(1, max_steps)):
        for _attempt in range(8):
            saved = (list(model.steps), dict(model.param_text), dict(model.named_parameters()),
                     dict(model.named_buffers()))
            step = STEP_MAKERS[rng.choices(names, weights)[0]][0](rng, now, model)
            if step is not None:
                model.steps.append(step)
                out = _out_shape(model, shape)
                if out is not None and 1 <= len(out) <= 5 and min(out, default=1) >= 1 and _numel(out) <= _LIMIT:
                    now = out
                    break
            _restore(model, saved)
    return Graph(model, spec, ref)


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _restore(model, saved):
    steps, texts, params, buffers = saved
    model.steps = steps
    for name in list(model.param_text):
        if name not in texts:
            del model.param_text[name]
            if name in model._parameters:
                del model._parameters[name]
            if name in model._buffers:
                del model._buffers[name]
