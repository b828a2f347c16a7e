"""Regressions for the rule and trace layer, each compared with torch itself: expand and
broadcasting with size-1 dims, Max/Min in the domain, functional rules that share the module
rules' conditions, multi-output layers in explanations, arange with a negative step, negative
input sizes, hooks, lazy modules and container subclasses with their own forward."""
import itertools
import warnings

import pytest
import sympy
import torch
import torch.nn.functional as F
from torch import nn

import symshape as ss

H, W = ss.symbols("H W")


def torch_run(model, *shapes):
    """The output shape(s) of *model* on zero tensors of *shapes* on the CPU, or the exception."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(*[torch.zeros(s) for s in shapes])
    except Exception as err:  # torch rejects the sizes
        return err
    if isinstance(out, (tuple, list)):
        return tuple(tuple(o.shape) for o in out)
    return tuple(out.shape)


def agrees(model, spec, points, names=("H", "W")):
    """At every point, symshape runs where torch runs, with torch's output shape, and refuses
    (``at`` raises, ``violations`` non-empty) where torch raises. Returns the number of points
    at which torch ran."""
    rep = ss.trace(model, spec)
    ran = 0
    for point in points:
        sizes = dict(zip(names, point))
        shape = tuple(int(t) if t.strip().isdigit() else sizes[t.strip()] for t in spec.split(","))
        got = torch_run(model, shape)
        if isinstance(got, Exception):
            assert rep.violations(**sizes), (sizes, got)
            with pytest.raises(ss.ShapeError):
                rep.at(**sizes)
        else:
            ran += 1
            assert not rep.violations(**sizes), (sizes, rep.violations(**sizes))
            out = rep.at(**sizes).output_shape
            assert tuple(int(d) for d in out) == got, (sizes, out, got)
    return ran


class SqueezeExcite(nn.Module):
    def forward(self, x):
        return x * F.adaptive_avg_pool2d(x, 1).expand_as(x)


def test_expand_as_stretches_size_one_dims():
    rep = ss.trace(SqueezeExcite(), "1,8,H,W")
    assert rep.domain == ()
    assert rep.output_shape == (1, 8, H, W)
    assert torch_run(SqueezeExcite(), (1, 8, 7, 9)) == (1, 8, 7, 9)
    assert agrees(SqueezeExcite(), "1,8,H,W", [(7, 9), (1, 1), (3, 1)]) == 3
