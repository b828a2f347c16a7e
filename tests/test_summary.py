"""rep.summary(depth=N) and `symshape summary --depth N`: the table grouped by module path, each
group's params checked against torch's modules and its MACs against FlopCounterMode, per module."""
import re

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

import symshape as ss
from symshape.cli import main
from symshape.verify.observing import _counting_mode


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x) + x)


class Net(nn.Module):
    """Nested containers, a module called twice (pool), function ops and a parameter of no layer."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU())
        self.body = nn.Sequential(Block(8), Block(8))
        self.pool = nn.MaxPool2d(2)
        self.scale = nn.Parameter(torch.ones(1))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(self.body(self.pool(self.stem(x))))
        return self.head(x.mean((2, 3)) * self.scale)


DEPTH2 = "\n".join([
    'Net  input (1, 3, H, W)',
    'layer       type          output shape                                        params                                                MACs',
    '----------  ------------  --------------------------------------------------  ------  --------------------------------------------------',
    'stem        2 layers      (1, 8, floor((H - 3)/2) + 1, floor((W - 3)/2) + 1)     224   216*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1)',
    '  stem.0    Conv2d        (1, 8, floor((H - 3)/2) + 1, floor((W - 3)/2) + 1)     224   216*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1)',
    '  stem.1    ReLU          (1, 8, floor((H - 3)/2) + 1, floor((W - 3)/2) + 1)       0                                                   0',
    'pool        MaxPool2d x2  (1, 8, floor((H - 9)/8) + 1, floor((W - 9)/8) + 1)       0                                                   0',
    'body        6 layers      (1, 8, floor((H - 5)/4) + 1, floor((W - 5)/4) + 1)   1,152  1152*(floor((H - 5)/4) + 1)*(floor((W - 5)/4) + 1)',
    '  body.0    3 layers      (1, 8, floor((H - 5)/4) + 1, floor((W - 5)/4) + 1)     576   576*(floor((H - 5)/4) + 1)*(floor((W - 5)/4) + 1)',
    '  body.1    3 layers      (1, 8, floor((H - 5)/4) + 1, floor((W - 5)/4) + 1)     576   576*(floor((H - 5)/4) + 1)*(floor((W - 5)/4) + 1)',
    'mean        Tensor.mean   (1, 8)                                                   0                                                   0',
    'mul         mul           (1, 8)                                                   0                                                   0',
    'head        Linear        (1, 10)                                                 90                                                  80',
    '(no layer)  parameters                                                             1                                                   0',
    '----------  ------------  --------------------------------------------------  ------  --------------------------------------------------',
    'output (1, 10)',
    'params 1,467 (1,467 trainable, 0 frozen; 5,868 bytes at 4 bytes each)',
    'MACs   1152*(floor((H - 5)/4) + 1)*(floor((W - 5)/4) + 1) + 216*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1) + 80',
    "output bytes 32*(floor((H - 9)/8) + 1)*(floor((W - 9)/8) + 1) + 224*(floor((H - 5)/4) + 1)*(floor((W - 5)/4) + 1) "
    "+ 64*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1) + 104 (every layer's output, 4 bytes per element)",
    'runs when H >= 9, W >= 9',
    'MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs',
])

AT = "\n".join([
    'Net  input (1, 3, 33, 40)  at H=33, W=40',
    'layer       type          output shape    params    MACs',
    '----------  ------------  --------------  ------  ------',
    'stem        2 layers      (1, 8, 16, 19)     224  65,664',
    '  stem.0    Conv2d        (1, 8, 16, 19)     224  65,664',
    '  stem.1    ReLU          (1, 8, 16, 19)       0       0',
    'pool        MaxPool2d x2  (1, 8, 4, 4)         0       0',
    'body        6 layers      (1, 8, 8, 9)     1,152  82,944',
    '  body.0    3 layers      (1, 8, 8, 9)       576  41,472',
    '  body.1    3 layers      (1, 8, 8, 9)       576  41,472',
    'mean        Tensor.mean   (1, 8)               0       0',
    'mul         mul           (1, 8)               0       0',
    'head        Linear        (1, 10)             90      80',
    '(no layer)  parameters                         1       0',
    '----------  ------------  --------------  ------  ------',
    'output (1, 10)',
    'params 1,467 (1,467 trainable, 0 frozen; 5,868 bytes at 4 bytes each)',
    'MACs   148,688',
    "output bytes 36,200 (every layer's output, 4 bytes per element)",
    'MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs',
])


def test_grouped_table_exact_text():
    rep = ss.trace(Net(), "1,3,H,W")
    assert rep.summary(depth=2) == DEPTH2
    assert rep.at(H=33, W=40).summary(depth=2) == AT
    assert rep.summary() == str(rep)  # the flat table stays the default
    depth1 = rep.summary(depth=1).splitlines()
    assert [line.split()[0] for line in depth1[3:10]] == ["stem", "pool", "body", "mean", "mul", "head", "(no"]
    assert len(rep.summary(depth=3).splitlines()) == len(DEPTH2.splitlines()) + 6  # the blocks' conv, add, act


@pytest.mark.parametrize("depth", [0, -1, 1.5, True, "2"])
def test_depth_must_be_a_positive_integer(depth):
    rep = ss.trace(Net(), "1,3,H,W")
    with pytest.raises(ss.ShapeError) as e:
        rep.summary(depth=depth)
    assert str(e.value) == f"depth must be a positive integer (1: the top-level modules), got {depth!r}"


def _rows(text):
    """``{name: (params, MACs)}`` from a numeric grouped table."""
    lines = text.splitlines()
    body = lines[3:lines.index(lines[2], 3)]
    out = {}
    for line in body:
        cells = re.split(r"\s{2,}", line.strip())
        out[cells[0]] = (int(cells[-2].replace(",", "")), int(cells[-1].replace(",", "")))
    return out


@pytest.mark.parametrize("factory,spec,sizes,depth", [
    (Net, "1,3,H,W", (33, 40), 3),
    (ss.zoo.resnet50, "1,3,H,W", (64, 48), 2),
    (ss.zoo.vit_tiny, "1,3,H,W", (224, 239), 2),
])
def test_groups_against_torch(factory, spec, sizes, depth):
    """Each row's params are its module's parameters (torch), its MACs FlopCounterMode's // 2 for
    that module; the "(no layer)" row holds the parameters that no module's row holds."""
    model = factory().eval()
    rep = ss.trace(model, spec)
    rows = _rows(rep.at(H=sizes[0], W=sizes[1]).summary(depth=depth))
    counter = FlopCounterMode(display=False)
    with _counting_mode(model, torch.device("cpu")), counter:  # no fused attention kernels, which it miscounts
        model(torch.randn(1, 3, *sizes))
    flops = {k.split(".", 1)[1] if "." in k else "": sum(v.values()) for k, v in counter.get_flop_counts().items()}
    modules = dict(model.named_modules())
    for name, (params, macs) in rows.items():
        if name == "(no layer)":
            in_rows = sum(p for n, (p, _) in rows.items() if "." not in n and n != "(no layer)")
            assert params == sum(p.numel() for p in model.parameters()) - in_rows
            continue
        if name in modules:
            assert params == sum(p.numel() for p in modules[name].parameters()), name
        else:
            assert params == 0, name  # a function op (add, cat, flatten, ...)
        assert macs == flops.get(name, 0) // 2, name
    assert {n for n in rows if "." not in n} >= {n for n, _ in model.named_children()}


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_depth(capsys):
    code, out, err = cli(capsys, "summary", "seed_case2", "--depth", "1", "--at", "H=32,W=32")
    rep = ss.trace(ss.zoo.seed_case2(), "1,3,H,W")
    assert (code, err) == (0, "")
    assert out.startswith(rep.summary(depth=1) + "\nnote: the model is in training mode")
    from symshape.cli import memory_line

    assert out.endswith("\n\n" + rep.at(H=32, W=32).summary(depth=1) + "\n" + memory_line(rep, {"H": 32, "W": 32})
                        + "\n")
    assert cli(capsys, "summary", "seed_case2", "--depth", "1", "--format", "json") == (2, "", (
        "symshape: error: --depth groups the text table; --format json has one row per layer: drop --depth or "
        "use --format text\n"))
    assert cli(capsys, "summary", "seed_case2", "--depth", "0") == (2, "", (
        "symshape: error: --depth takes a positive number of levels (1: the top-level modules), got 0\n"))


def test_grouped_summary_counts_frozen_parameters():
    net = Net()
    for p in net.stem.parameters():
        p.requires_grad_(False)
    rep = ss.trace(net, "1,3,H,W")
    assert rep.frozen == 224
    assert "params 1,467 (1,243 trainable, 224 frozen; 5,868 bytes at 4 bytes each)" in rep.summary(depth=1)
    assert ss.render.json.from_json(rep.to_json()).frozen == 224
