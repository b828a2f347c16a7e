"""The rule results kept within one trace (memo.py): exact keys, only symshape's own rules, and a
new output object for every layer (the tracer tells which layer made a shape by its object)."""
from __future__ import annotations

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.memo import fresh, memo_tag, rule_key
from symshape.report import Outputs, Shape
from symshape.rules.activation import elementwise
from symshape.rules.registry import Out


def test_keys_tell_apart_values_that_compare_equal():
    keys = [rule_key(elementwise, None, (v,), None) for v in (2, 2.0, True, sympy.Integer(2), 0.0, -0.0)]
    assert None not in keys
    assert len(set(keys)) == len(keys)
    named = rule_key(elementwise, None, (Outputs({"a": (1, 2)}),), None)
    plain = rule_key(elementwise, None, (Outputs([(1, 2)]),), None)
    assert named != plain
    assert rule_key(elementwise, None, (Shape((1, 2)),), None) != rule_key(elementwise, None, ((1, 2),), None)
    assert rule_key(elementwise, None, (object(),), None) is None  # no exact key: the rule is run


def test_only_symshape_rules_are_kept():
    def mine(module, x):
        return x

    assert memo_tag(mine) is None
    assert memo_tag(elementwise) is elementwise


def test_a_user_rule_runs_at_every_call():
    calls = []

    class Twice(nn.Module):
        def forward(self, x):
            return x

    @ss.register(Twice)
    def twice(module, x):
        calls.append(x)
        return x

    model = nn.Sequential(Twice(), Twice(), nn.ReLU(), nn.ReLU())
    rep = ss.trace(model, "1,3,H,W")
    assert len(calls) == 2
    assert [layer.kind for layer in rep.layers] == ["Twice", "Twice", "ReLU", "ReLU"]


def test_a_kept_result_is_given_in_new_containers():
    out = Out(Outputs([Shape((1, 2)), None]), 3)
    again = fresh(out)
    assert again == out and again.shape is not out.shape and again.shape[0] is not out.shape[0]


class Repeated(nn.Module):
    """The same ops on the same shapes, several times."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        y = F.relu(x)
        z = F.relu(x)
        return self.b(self.a(y)) + F.relu(z)


def test_each_layer_of_a_repeated_call_has_its_own_output():
    rep = ss.trace(Repeated(), "1,3,H,W")
    assert [(layer.name, layer.inputs) for layer in rep.layers] == [
        ("relu", (-1,)), ("relu_1", (-1,)), ("a", (0,)), ("b", (2,)), ("relu_2", (1,)), ("add", (3, 4))]


class Guarded(nn.Module):
    """Run by the executing front end (it raises on a size), with the same op twice on one shape."""

    def forward(self, x):
        if x.shape[-1] % 8 != 0:
            raise ValueError("the width must be a multiple of 8")
        y = F.avg_pool2d(x, 2)
        z = F.avg_pool2d(x, 2)
        return y + F.avg_pool2d(z, 1)


def test_kept_results_agree_with_torch_in_the_executing_front_end():
    rep = ss.trace(Guarded(), "1,3,H,W")
    assert [layer.name for layer in rep.layers] == ["avg_pool2d", "avg_pool2d_1", "avg_pool2d_2", "add"]
    for h, w in ((5, 8), (6, 16), (9, 24)):
        x = torch.zeros(1, 3, h, w)
        assert tuple(Guarded()(x).shape) == tuple(int(d) for d in rep.at(H=h, W=w).output_shape)
