"""One record per call (``pool``, ``pool#2``) and a record for every module, containers included."""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.floors import floor_div
from symshape.symbols import symbols

H, W = symbols("H W")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x).relu()


class Shared(nn.Module):
    """A pool applied twice, a Sequential applied twice, and a block traced through by fx."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(3, 8, 3), nn.MaxPool2d(2)
        self.seq = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.block = Block()

    def forward(self, x):
        x = self.pool(self.conv(x))
        return self.pool(self.block(self.seq(self.seq(x))))


def test_a_module_called_twice_has_one_record_per_call():
    rep = ss.trace(Shared(), "1,3,H,W")
    assert [layer.name for layer in rep.layers] == [
        "conv", "pool", "seq.0", "seq.1", "seq.0#2", "seq.1#2", "block.conv", "block.relu", "block.add", "pool#2"]
    assert rep.layer("pool").out_shape == (1, 8, floor_div(H, 2) - 1, floor_div(W, 2) - 1)
    assert rep.layer("pool#2").out_shape == (1, 8, floor_div(H - 6, 4) + 1, floor_div(W - 6, 4) + 1)
    # the domain names the call that needs it
    assert [(c.layer, str(c.expr)) for c in rep.domain if c.layer.startswith("pool")] == [
        ("pool", "H >= 4"), ("pool", "W >= 4"), ("pool#2", "H >= 6"), ("pool#2", "W >= 6")]


def test_every_module_has_a_record_containers_included():
    rep = ss.trace(Shared(), "1,3,H,W")
    assert [(c.name, c.kind, c.first, c.stop) for c in rep.modules] == [
        ("seq", "Sequential", 2, 4), ("seq#2", "Sequential", 4, 6), ("block", "Block", 6, 9), ("", "Shared", 0, 10)]
    block = rep.layer("block")
    inner = (1, 8, floor_div(H, 2) - 1, floor_div(W, 2) - 1)
    assert (block.kind, block.in_shapes, block.out_shape, block.params) == ("Block", (inner,), inner, 584)
    assert str(block.macs) == "576*(floor(H/2) - 1)*(floor(W/2) - 1)"
    assert rep.layer("").macs == rep.macs
    assert rep.at(H=32, W=32).layer("seq#2").out_shape == (1, 8, 15, 15)
    back = ss.render.json.from_json(rep.to_json())
    assert back.modules == rep.modules and back.layer("block") == block
    data = json.loads(rep.to_json())
    assert data["modules"][2] == {"name": "block", "kind": "Block", "in_shapes": [["1", "8", "floor(H/2) - 1",
                                  "floor(W/2) - 1"]], "out_shape": ["1", "8", "floor(H/2) - 1", "floor(W/2) - 1"],
                                  "params": 584, "layers": [6, 9]}


def test_an_unknown_name_lists_the_names():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), "1,3,H,W")
    try:
        rep.layer("2")
    except KeyError as err:
        assert err.args[0] == "no layer or module named '2'; names: '0', '1'"
    else:
        raise AssertionError("no KeyError")


def test_check_compares_each_call_and_each_container_with_torch():
    model = Shared()
    res = ss.check(model, ss.trace(model, "1,3,H,W"), sizes=[{"H": 20, "W": 13}])
    assert res.ok
    rows = {(c.layer, c.what): (c.predicted, c.actual) for c in res.comparisons}
    assert rows[("pool", "shape")] == ((1, 8, 9, 5), (1, 8, 9, 5))
    assert rows[("pool#2", "shape")] == ((1, 8, 4, 2), (1, 8, 4, 2))
    assert rows[("seq#2", "shape")] == ((1, 8, 9, 5), (1, 8, 9, 5))
    assert rows[("block", "macs")] == (576 * 9 * 5, 576 * 9 * 5)
    assert rows[("seq.0#2", "macs")] == (576 * 9 * 5, 576 * 9 * 5)


def test_summary_groups_the_calls_of_a_module():
    text = ss.trace(Shared(), "1,3,H,W").summary(depth=1)
    assert "pool   MaxPool2d x2" in text and "seq    4 layers" in text


class Guarded(nn.Module):
    """fx cannot trace this forward (an `if` on a size): the executor runs it, and still records its blocks."""

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU())

    def forward(self, x):
        if x.shape[-1] % 2:
            raise ValueError("the width must be even")
        return self.head(self.block(x))


def test_the_executor_records_each_module_call():
    rep = ss.trace(Guarded(), "1,8,H,W")
    assert [(c.name, c.kind) for c in rep.modules] == [("block", "Block"), ("head", "Sequential"), ("", "Guarded")]
    assert rep.layer("head").out_shape == (1, 4, H, W) and rep.layer("block").params == 584
    res = ss.check(Guarded(), rep, sizes=[{"H": 3, "W": 6}])
    assert res.ok and {("block", "shape"), ("head", "macs")} <= {(c.layer, c.what) for c in res.comparisons}


class PatchEmbed(nn.Module):
    """Returns the tokens and the grid size (ints), as timm's PatchEmbed in mvitv2 and xcit do."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x):
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[-2], x.shape[-1])


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = PatchEmbed()

    def forward(self, x):
        x, (h, w) = self.patch_embed(x)
        return x.reshape(x.shape[0], h, w, -1)


def test_a_module_that_returns_sizes_beside_a_tensor_is_checked_on_its_tensor():
    rep = ss.trace(Tokens(), "1,3,H,W")
    tokens = (1, floor_div(H, 4) * floor_div(W, 4), 8)
    assert rep.layer("patch_embed").out_shape == (tokens, (None, None))
    assert ss.check(Tokens(), rep).ok


class FixedSize(nn.Module):
    """A model that asserts its input size (timm's strict_img_size), then computes with it."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x):
        torch._assert(x.shape[-1] == 32, "the width must be 32")
        x = self.proj(x)
        pad = (7 - x.shape[-1] % 7) % 7  # a window partition's padding, computed from the size
        return F.pad(x, (0, pad))


def test_a_size_the_domain_fixes_is_put_into_later_formulas():
    rep = ss.trace(FixedSize(), "1,3,H,W")
    assert [str(c.expr) for c in rep.domain] == ["Eq(W, 32)", "H >= 4"]
    assert rep.output_shape == (1, 8, floor_div(H, 4), 14)  # (7 - 8 % 7) % 7 = 6: 8 + 6
    assert ss.check(FixedSize(), rep).ok
