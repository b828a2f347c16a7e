"""rep.macs_as(tool): each tool's total as a formula, checked against numbers recorded from the
tools themselves (fvcore 0.1.5.post20221221, ptflops 0.7.5, thop 0.1.1.post2209072238, torchinfo
1.8.0, with torch 2.13.0 on CPU, models in eval mode; ``python benchmarks/counters.py --record``
prints the small modules' numbers, ``python benchmarks/counters.py`` the zoo's). The tools are not
needed here."""
from __future__ import annotations

import pytest
import sympy
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape import zoo
from symshape.cli import main
from symshape.conventions import CONVENTIONS
from symshape.conventions.table import ROWS, check_row, who_counts

from convention_cases import CASES, SelfAttention

TOOLS = ("fvcore", "ptflops", "thop", "torchinfo")
H, W, L = ss.symbols("H W L")

#: The tools' numbers on tests/convention_cases.py, at its two sizes per case.
RECORDED = {
    "conv": ({"fvcore": 34560, "ptflops": 17280, "thop": 34560, "torchinfo": 34560},
        {"fvcore": 15120, "ptflops": 7560, "thop": 15120, "torchinfo": 15120}),
    "conv_bias": ({"fvcore": 34560, "ptflops": 17920, "thop": 34560, "torchinfo": 35840},
        {"fvcore": 15120, "ptflops": 7840, "thop": 15120, "torchinfo": 15680}),
    "conv_grouped": ({"fvcore": 23040, "ptflops": 11520, "thop": 23040, "torchinfo": 23040},
        {"fvcore": 10080, "ptflops": 5040, "thop": 10080, "torchinfo": 10080}),
    "conv_transpose_78": ({"fvcore": 288, "ptflops": 297, "thop": 2592, "torchinfo": 2601},
        {"fvcore": 1728, "ptflops": 1748, "thop": 5760, "torchinfo": 5780}),
    "conv_transpose": ({"fvcore": 7680, "ptflops": 3840, "thop": 30720, "torchinfo": 30720},
        {"fvcore": 3072, "ptflops": 1536, "thop": 12288, "torchinfo": 12288}),
    "linear": ({"fvcore": 1280, "ptflops": 640, "thop": 1280, "torchinfo": 256},
        {"fvcore": 1792, "ptflops": 896, "thop": 1792, "torchinfo": 256}),
    "linear_bias": ({"fvcore": 1280, "ptflops": 680, "thop": 1280, "torchinfo": 272},
        {"fvcore": 1792, "ptflops": 952, "thop": 1792, "torchinfo": 272}),
    "batchnorm": ({"fvcore": 1440, "ptflops": 720, "thop": 2880, "torchinfo": 12},
        {"fvcore": 756, "ptflops": 378, "thop": 1512, "torchinfo": 12}),
    "batchnorm_plain": ({"fvcore": 720, "ptflops": 360, "thop": 1440, "torchinfo": 0},
        {"fvcore": 378, "ptflops": 189, "thop": 756, "torchinfo": 0}),
    "layernorm": ({"fvcore": 800, "ptflops": 80, "thop": 640, "torchinfo": 64},
        {"fvcore": 1120, "ptflops": 112, "thop": 896, "torchinfo": 64}),
    "relu": ({"fvcore": 0, "ptflops": 1080, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 567, "thop": 0, "torchinfo": 0}),
    "relu6": ({"fvcore": 0, "ptflops": 360, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 189, "thop": 0, "torchinfo": 0}),
    "leaky_relu": ({"fvcore": 0, "ptflops": 360, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 189, "thop": 0, "torchinfo": 0}),
    "gelu": ({"fvcore": 0, "ptflops": 1080, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 567, "thop": 0, "torchinfo": 0}),
    "silu": ({"fvcore": 0, "ptflops": 720, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 378, "thop": 0, "torchinfo": 0}),
    "tanh": ({"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0}),
    "softmax": ({"fvcore": 0, "ptflops": 720, "thop": 2100, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 378, "thop": 1092, "torchinfo": 0}),
    "maxpool": ({"fvcore": 0, "ptflops": 1080, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 567, "thop": 0, "torchinfo": 0}),
    "avgpool": ({"fvcore": 0, "ptflops": 1080, "thop": 180, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 567, "thop": 72, "torchinfo": 0}),
    "adaptive_avgpool": ({"fvcore": 720, "ptflops": 1080, "thop": 726, "torchinfo": 0},
        {"fvcore": 378, "ptflops": 567, "thop": 384, "torchinfo": 0}),
    "adaptive_avgpool_2x3": ({"fvcore": 720, "ptflops": 1080, "thop": 756, "torchinfo": 0},
        {"fvcore": 378, "ptflops": 567, "thop": 414, "torchinfo": 0}),
    "upsample_nearest": ({"fvcore": 2880, "ptflops": 3600, "thop": 2880, "torchinfo": 0},
        {"fvcore": 1512, "ptflops": 1890, "thop": 1512, "torchinfo": 0}),
    "upsample_bilinear": ({"fvcore": 11520, "ptflops": 3600, "thop": 31680, "torchinfo": 0},
        {"fvcore": 6048, "ptflops": 1890, "thop": 16632, "torchinfo": 0}),
    "upsampling_nearest2d": ({"fvcore": 2880, "ptflops": 2880, "thop": 2880, "torchinfo": 0},
        {"fvcore": 1512, "ptflops": 1512, "thop": 1512, "torchinfo": 0}),
    "local_response_norm": ({"fvcore": 0, "ptflops": 8640, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 4536, "thop": 0, "torchinfo": 0}),
    "dropout": ({"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0}),
    "groupnorm": ({"fvcore": 7200, "ptflops": 1440, "thop": 0, "torchinfo": 24},
        {"fvcore": 3780, "ptflops": 756, "thop": 0, "torchinfo": 24}),
    "instancenorm_affine": ({"fvcore": 3600, "ptflops": 720, "thop": 2880, "torchinfo": 12},
        {"fvcore": 1890, "ptflops": 378, "thop": 1512, "torchinfo": 12}),
    "rmsnorm": ({"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 32},
        {"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 32}),
    "prelu": ({"fvcore": 0, "ptflops": 1080, "thop": 720, "torchinfo": 2},
        {"fvcore": 0, "ptflops": 567, "thop": 378, "torchinfo": 2}),
    "elu": ({"fvcore": 0, "ptflops": 1080, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 567, "thop": 0, "torchinfo": 0}),
    "softmax2d": ({"fvcore": 0, "ptflops": 720, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 378, "thop": 0, "torchinfo": 0}),
    "conv1d": ({"fvcore": 288, "ptflops": 156, "thop": 288, "torchinfo": 312},
        {"fvcore": 432, "ptflops": 234, "thop": 432, "torchinfo": 468}),
    "avgpool1d": ({"fvcore": 0, "ptflops": 60, "thop": 16, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 84, "thop": 24, "torchinfo": 0}),
    "adaptive_avgpool1d": ({"fvcore": 0, "ptflops": 60, "thop": 56, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 84, "thop": 72, "torchinfo": 0}),
    "attention": ({"fvcore": 10240, "ptflops": 6420, "thop": 0, "torchinfo": 0},
        {"fvcore": 14336, "ptflops": 9492, "thop": 0, "torchinfo": 0}),
    "attention_weights": ({"fvcore": 11840, "ptflops": 8220, "thop": 0, "torchinfo": 0},
        {"fvcore": 17472, "ptflops": 13020, "thop": 0, "torchinfo": 0}),
    "attention_seq_first": ({"fvcore": 10240, "ptflops": 2568, "thop": 0, "torchinfo": 0},
        {"fvcore": 14336, "ptflops": 2712, "thop": 0, "torchinfo": 0}),
    "cross_attention": ({"fvcore": 7680, "ptflops": 3300, "thop": 0, "torchinfo": 0},
        {"fvcore": 10752, "ptflops": 5012, "thop": 0, "torchinfo": 0}),
    "functions": ({"fvcore": 18000, "ptflops": 14400, "thop": 0, "torchinfo": 0},
        {"fvcore": 6615, "ptflops": 5859, "thop": 0, "torchinfo": 0}),
    "add": ({"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0},
        {"fvcore": 0, "ptflops": 0, "thop": 0, "torchinfo": 0}),
    "matmul": ({"fvcore": 7200, "ptflops": 0, "thop": 0, "torchinfo": 0},
        {"fvcore": 2646, "ptflops": 0, "thop": 0, "torchinfo": 0}),
}

#: The tools' numbers on every zoo model at the two sizes of benchmarks/counters.py (H, W).
ZOO = {
    "seed_case1": (
        ((32, 32), {"fvcore": 849056, "ptflops": 865290, "thop": 849056, "torchinfo": 854474}),
        ((31, 32), {"fvcore": 849056, "ptflops": 865290, "thop": 849056, "torchinfo": 854474})),
    "seed_case2": (
        ((32, 32), {"fvcore": 3655680, "ptflops": 3799050, "thop": 3713024, "torchinfo": 3627242}),
        ((35, 38), {"fvcore": 4494176, "ptflops": 4675306, "thop": 4566624, "torchinfo": 4458186})),
    "fastbook_cnn": (
        ((28, 28), {"fvcore": 3750912, "ptflops": 161570, "thop": 3750912, "torchinfo": 3850880}),
        ((40, 30), {"fvcore": 5483520, "ptflops": 240916, "thop": 5483520, "torchinfo": 5634304})),
    "lenet5": (
        ((32, 32), {"fvcore": 416520, "ptflops": 435646, "thop": 418096, "torchinfo": 423038}),
        ((33, 35), {"fvcore": 457770, "ptflops": 479446, "thop": 459430, "torchinfo": 465138})),
    "alexnet": (
        ((224, 224), {"fvcore": 714197696, "ptflops": 716441128, "thop": 714206912, "torchinfo": 714682664}),
        ((256, 200), {"fvcore": 711693376, "ptflops": 713957992, "thop": 711702592, "torchinfo": 712181864})),
    "vgg11": (
        ((224, 224), {"fvcore": 7609115136, "ptflops": 7643686888, "thop": 7609140224, "torchinfo": 7616525288}),
        ((160, 192), {"fvcore": 4706581504, "ptflops": 4727757800, "thop": 4706606592, "torchinfo": 4711121896})),
    "vgg16": (
        ((224, 224), {"fvcore": 15470289408, "ptflops": 15523225576, "thop": 15470314496, "torchinfo": 15483821032}),
        ((160, 192), {"fvcore": 9519545344, "ptflops": 9551965160, "thop": 9519570432, "torchinfo": 9527833576})),
    "plainnet50": (
        ((224, 224), {"fvcore": 5502134784, "ptflops": 5511694312, "thop": 5510063104, "torchinfo": 5494214504}),
        ((192, 256), {"fvcore": 5389856768, "ptflops": 5399221224, "thop": 5397623296, "torchinfo": 5382098792})),
    "alexnet2012": (
        ((227, 227), {"fvcore": 724406816, "ptflops": 728711256, "thop": 724406816, "torchinfo": 725066088}),
        ((240, 250), {"fvcore": 791638784, "ptflops": 796500232, "thop": 791638784, "torchinfo": 792376296})),
    "resnet50": (
        ((224, 224), {"fvcore": 4111512576, "ptflops": 4132436968, "thop": 4133742592, "torchinfo": 4089238376}),
        ((192, 256), {"fvcore": 4027645952, "ptflops": 4048143336, "thop": 4049422336, "torchinfo": 4005827432})),
    "mobilenet_v2": (
        ((224, 224), {"fvcore": 314193216, "ptflops": 320300008, "thop": 327486720, "torchinfo": 300809384}),
        ((192, 256), {"fvcore": 307807232, "ptflops": 313789416, "thop": 320829440, "torchinfo": 294697256})),
    "unet": (
        ((572, 572), {"fvcore": 150428424448, "ptflops": 150867255072, "thop": 167322556672, "torchinfo": 167456910112}),
        ((188, 236), {"fvcore": 8355508480, "ptflops": 8394672288, "thop": 8630759680, "torchinfo": 8640783520})),
    "unet_same": (
        ((512, 512), {"fvcore": 192384335872, "ptflops": 192863010816, "thop": 218154139648, "torchinfo": 218314047488}),
        ((128, 192), {"fvcore": 18036031488, "ptflops": 18080907264, "thop": 20451950592, "torchinfo": 20466941952})),
    "vit_tiny": (
        ((224, 224), {"fvcore": 1079579328, "ptflops": 1264234540, "thop": 730047744, "torchinfo": 32692072}),
        ((230, 235), {"fvcore": 1079579328, "ptflops": 1264234540, "thop": 730047744, "torchinfo": 32692072})),
}

REPORTS = {name: ss.trace(entry.factory().eval(), entry.input) for name, entry in zoo.MODELS.items()}


def test_the_recordings_cover_every_case_and_zoo_model():
    assert set(RECORDED) == set(CASES) and set(ZOO) == set(zoo.MODELS)


@pytest.mark.parametrize("name", list(CASES))
def test_small_modules_count_as_the_tools_do(name):
    factory, spec, sizes_list = CASES[name]
    rep = ss.trace(factory().eval(), spec)
    counts = {tool: rep.macs_as(tool) for tool in TOOLS}
    for sizes, recorded in zip(sizes_list, RECORDED[name]):
        assert {tool: counts[tool].at(sizes) for tool in TOOLS} == recorded, sizes


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_zoo_models_count_as_the_tools_do(name):
    rep = REPORTS[name]
    counts = {tool: rep.macs_as(tool) for tool in TOOLS}
    for (h, w), recorded in ZOO[name]:
        assert {tool: counts[tool].at(H=h, W=w) for tool in TOOLS} == recorded, (h, w)


def _counts(module, spec):
    rep = ss.trace(module.eval(), spec)
    return {tool: rep.macs_as(tool).total for tool in CONVENTIONS}


def test_conv_transpose_formulas_show_who_counts_output_positions():
    # thop and torchinfo count a ConvTranspose at its output positions: 4 times too many at stride 2
    got = _counts(nn.ConvTranspose2d(8, 4, 2, stride=2, bias=False), "2,8,H,W")
    assert got == {"torchvision": 256 * H * W, "fvcore": 256 * H * W, "ptflops": 128 * H * W,
                   "thop": 1024 * H * W, "torchinfo": 1024 * H * W}


def test_fvcore_issue_78_is_fixed_in_the_version_reproduced():
    # issue 78's example: ConvTranspose2d(32, 1, 3) on 1×1 gave 81 (Cout² · k · output positions);
    # fvcore 0.1.5.post20221221 gives 32·9 = 288, as torchvision counts
    rep = ss.trace(nn.ConvTranspose2d(32, 1, 3).eval(), "1,32,H,W")
    assert rep.macs_as("fvcore").total == rep.macs == 288 * H * W
    assert RECORDED["conv_transpose_78"][0]["fvcore"] == 288


def test_torchinfo_ignores_the_middle_dims_of_a_linear():
    # torchinfo issue 77: (weights + bias) · the output's first dim, whatever L is
    got = _counts(nn.Linear(16, 8), "2,L,16")
    assert got == {"torchvision": 256 * L, "fvcore": 256 * L, "ptflops": 136 * L, "thop": 256 * L, "torchinfo": 272}


def test_ptflops_counts_relu_and_pooling_twice_and_divides_modules_by_the_batch():
    # the hook counts Y (divided by N = 2), the patched F.relu / F.max_pool2d counts X again
    assert _counts(nn.ReLU(), "2,3,H,W")["ptflops"] == 9 * H * W
    assert _counts(nn.MaxPool2d(2), "2,3,H,W")["ptflops"] == 9 * H * W
    assert _counts(nn.ReLU6(), "2,3,H,W")["ptflops"] == 3 * H * W  # ReLU6 calls hardtanh, not patched
    # a batch of 3 leaves a remainder: ptflops truncates the float
    assert _counts(nn.Conv2d(1, 1, 1), "3,1,H,W")["ptflops"] == sympy.floor(2 * H * W)
    # Upsample: the hook's first sample, 4·H·W, divided by 3, plus the patched F.interpolate's 12·H·W
    assert _counts(nn.Upsample(scale_factor=2), "3,1,H,W")["ptflops"] == sympy.floor(40 * H * W / 3)


def test_attention_formulas():
    got = _counts(SelfAttention(False), "2,L,16")
    assert got == {"torchvision": 64 * L ** 2 + 2048 * L, "fvcore": 2048 * L, "ptflops": 36 * L ** 2 + 1104 * L,
                   "thop": 0, "torchinfo": 0}
    got = _counts(SelfAttention(True), "2,L,16")
    assert got["fvcore"] == got["torchvision"] == 64 * L ** 2 + 2048 * L  # bmm runs, and fvcore counts it
    assert got["ptflops"] == 108 * L ** 2 + 1104 * L  # + the patched bmm twice (64·L²) and softmax (8·L²)


def test_thop_counts_zero_for_modules_it_has_no_rule_for():
    assert _counts(nn.GELU(), "2,3,H,W")["thop"] == 0
    assert _counts(nn.GroupNorm(1, 3), "2,3,H,W")["thop"] == 0
    assert _counts(nn.BatchNorm2d(3), "2,3,H,W")["thop"] == 24 * H * W  # 2 per element, doubled for affine


def test_fvcore_batchnorm_in_training_mode():
    rep = ss.trace(nn.BatchNorm2d(3).eval(), "2,3,H,W")
    assert rep.macs_as("fvcore").total == 12 * H * W
    assert rep.macs_as("fvcore", training=True).total == 30 * H * W


def test_the_torchvision_convention_is_the_default_count():
    rep = REPORTS["resnet50"]
    count = rep.macs_as()
    assert count.convention == "torchvision" and count.total == rep.macs
    assert sum(term for _, _, term in count.layers) == rep.macs
    assert count.at(H=224, W=224) == rep.at(H=224, W=224).macs == 4089184256


def test_a_count_names_its_source_and_layers():
    rep = REPORTS["seed_case1"]
    count = rep.macs_as("torchinfo")
    assert count.source.startswith("torchinfo 1.8.0: torchinfo/layer_info.py (LayerInfo.calculate_macs)")
    assert [(name, kind, ss.fmt(term)) for name, kind, term in count.layers] == [
        ("0", "Conv2d", "4736*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)"), ("3", "Linear", "54090")]
    assert any("issue #77" in note for note in count.notes)
    assert repr(count).startswith("<Count torchinfo: ")


def test_errors_name_the_convention_the_layer_and_what_is_missing():
    with pytest.raises(ss.ShapeError) as err:
        REPORTS["seed_case1"].macs_as("deepspeed")
    assert str(err.value) == ("unknown counting convention 'deepspeed'; known: torchvision, fvcore, ptflops, thop, "
                              "torchinfo")

    class Interpolate(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="bilinear")

    rep = ss.trace(Interpolate(), "1,3,H,W")
    with pytest.raises(ss.ShapeError) as err:
        rep.macs_as("fvcore")
    assert str(err.value) == ("layer 'interpolate' (interpolate): fvcore's count depends on the interpolation mode, "
                              "which symshape does not record for a function call; symshape does not reproduce it "
                              "(count this layer with the tool itself, or leave it out of the comparison)")
    assert rep.macs_as("thop").total == 0  # thop counts no function

    count = REPORTS["seed_case2"].macs_as("thop")
    with pytest.raises(ss.ShapeError, match=r"^give every size to count at: missing W$"):
        count.at(H=32)
    with pytest.raises(ss.ShapeError, match=r"^'C' is not a size of this model; its sizes are H, W$"):
        count.at(C=3)


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_who_counts_what_agrees_with_the_rules(row):
    assert check_row(row) == []


def test_the_readme_shows_the_current_table():
    with open(__file__.replace("tests/test_conventions.py", "README.md"), encoding="utf-8") as f:
        assert who_counts() in f.read()


def test_cli_summary_macs_as(capsys):
    assert main(["summary", "seed_case2", "--macs-as", "fvcore"]) == 0
    out = capsys.readouterr().out
    assert "MACs as fvcore counts them: 1232*H*W + 18560*floor(H/4)*floor(W/4) + 4672*floor(H/2)*floor(W/2) + 10240\n" \
           "at H=32, W=32: 3,655,680\n(rules from fvcore 0.1.5.post20221221: " in out
    assert main(["summary", "seed_case2", "--macs-as", "fvcore", "--format", "json"]) == 2
    assert capsys.readouterr().err.strip().endswith("--macs-as adds lines to the text table; drop it or use "
                                                    "--format text")
