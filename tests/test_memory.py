"""rep.memory() against torch (the oracles are in tests/memory_oracles.py; the random networks in
test_memory_random.py): one rule at a time, attention and local response norm, the zoo, budgets,
the command line, JSON and the memory column of the tables."""
import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.memory import SAVED
from memory_oracles import FlashAttention, SelfAttention, _WEIGHTS, agree, inference_peak, saved_bytes


# ------------------------------------------------------------------ one rule at a time

class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _after_conv(m, c=4):
    """*m* fed by a conv (an input that needs grad) and alone (the model's input, without grad)."""
    return [nn.Sequential(nn.Conv2d(c, c, 1), m), nn.Sequential(m)]


ONE_OP = {
    "conv": lambda: nn.Conv2d(4, 6, 3, stride=2),
    "conv_transpose": lambda: nn.ConvTranspose2d(4, 3, 3, stride=2),
    "batchnorm": lambda: nn.BatchNorm2d(4),
    "instancenorm": lambda: nn.InstanceNorm2d(4),
    "instancenorm_affine": lambda: nn.InstanceNorm2d(4, affine=True),
    "instancenorm_running": lambda: nn.InstanceNorm2d(4, track_running_stats=True),
    "instancenorm_both": lambda: nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
    "batchnorm_no_running": lambda: nn.BatchNorm2d(4, track_running_stats=False),
    "groupnorm": lambda: nn.GroupNorm(2, 4),
    "layernorm": lambda: nn.LayerNorm(7),
    "relu": lambda: nn.ReLU(), "relu_": lambda: nn.ReLU(inplace=True),
    "sigmoid": lambda: nn.Sigmoid(), "tanh": lambda: nn.Tanh(),
    "softmax": lambda: nn.Softmax(dim=1), "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "gelu": lambda: nn.GELU(), "silu": lambda: nn.SiLU(), "silu_": lambda: nn.SiLU(inplace=True),
    "hardswish": lambda: nn.Hardswish(), "hardswish_": lambda: nn.Hardswish(inplace=True),
    "hardsigmoid": lambda: nn.Hardsigmoid(), "mish": lambda: nn.Mish(), "mish_": lambda: nn.Mish(inplace=True),
    "relu6": lambda: nn.ReLU6(), "relu6_": lambda: nn.ReLU6(inplace=True),
    "leakyrelu": lambda: nn.LeakyReLU(0.1), "leakyrelu_": lambda: nn.LeakyReLU(0.1, inplace=True),
    "elu": lambda: nn.ELU(), "elu_": lambda: nn.ELU(inplace=True), "selu": lambda: nn.SELU(),
    "celu_": lambda: nn.CELU(inplace=True), "softplus": lambda: nn.Softplus(),
    "maxpool": lambda: nn.MaxPool2d(2), "maxpool_ceil": lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    "adaptivemaxpool": lambda: nn.AdaptiveMaxPool2d(2), "avgpool": lambda: nn.AvgPool2d(3, 2),
    "adaptiveavgpool1": lambda: nn.AdaptiveAvgPool2d(1), "adaptiveavgpool3": lambda: nn.AdaptiveAvgPool2d(3),
    "dropout": lambda: nn.Dropout(0.5), "dropout_": lambda: nn.Dropout(0.5, inplace=True),
    "dropout0": lambda: nn.Dropout(0.0), "dropout2d": lambda: nn.Dropout2d(0.2),
    "linear": lambda: nn.Sequential(nn.Flatten(2), nn.Linear(35, 5)),
    "flatten_linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(140, 5)),
    "upsample": lambda: nn.Upsample(scale_factor=2), "pad": lambda: nn.ZeroPad2d(1),
    "permute_reshape": lambda: _Fn(lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)),
    "add_mul": lambda: _Fn(lambda x: (x + 1) * x),
    "matmul": lambda: _Fn(lambda x: x @ x.transpose(2, 3)),
    "cat_chunk": lambda: _Fn(lambda x: torch.cat(x.chunk(2, 1)[::-1], 1)),
    "mean": lambda: _Fn(lambda x: x.mean((2, 3))),
    "div": lambda: _Fn(lambda x: x / torch.sigmoid(x) / 2),
    "matmul_strided": lambda: _Fn(lambda x: x.transpose(1, 2) @ x.transpose(1, 2).transpose(-2, -1)),
    "matmul_last_two": lambda: _Fn(lambda x: x @ (x * 2).transpose(-2, -1)),
    "relu_method": lambda: _Fn(lambda x: F.relu(x * 2, inplace=True)),
    "slice_h_flatten": lambda: _Fn(lambda x: x[:, :, 1:].flatten(1)),
    "slice_w_reshape": lambda: _Fn(lambda x: x[..., :3].reshape(x.shape[0], 4, -1)),
    "chunk_c_flatten": lambda: _Fn(lambda x: x.chunk(2, 1)[0].flatten(2)),
    "slice_matmul": lambda: _Fn(lambda x: x[..., :3] @ x[:, :, :3]),
    "slice_matmul_copy": lambda: _Fn(lambda x: x[:, 1:] @ x[:, 1:].transpose(2, 3)),
    "chunk_last_linear": lambda: nn.Sequential(nn.ConstantPad2d((0, 1, 0, 0), 0.0), _Fn(lambda x: x.chunk(2, 3)[0]),
                                               nn.Linear(4, 3)),
    "slice_contiguous": lambda: _Fn(lambda x: x[:, :, 1:].contiguous()),
    "permute_linear": lambda: nn.Sequential(_Fn(lambda x: x.permute(0, 2, 3, 1)), nn.Linear(4, 6)),
    "permute_linear_nobias": lambda: nn.Sequential(_Fn(lambda x: x.permute(0, 2, 3, 1)), nn.Linear(4, 6, bias=False)),
    "transpose_linear": lambda: nn.Sequential(_Fn(lambda x: x.transpose(2, 3)), nn.Linear(5, 2)),
}


@pytest.mark.parametrize("op", ONE_OP)
def test_one_op_matches_torch(op):
    """Each rule, after a conv and as the first op, training and inference, at two sizes."""
    for model in _after_conv(ONE_OP[op]()):
        assert agree(model, "N,4,H,W", lambda s: torch.randn(s["N"], 4, s["H"], s["W"]),
                     [{"N": 2, "H": 5, "W": 7}, {"N": 3, "H": 5, "W": 7}]) == 4


def test_every_saved_rule_is_exercised():
    """Every rule function of the registry is reached by ONE_OP or the attention and LRN tests below."""
    from symshape import memory as mem

    traced = [ss.trace(nn.Sequential(factory()), "N,4,H,W") for factory in ONE_OP.values()]
    traced += [ss.trace(SelfAttention(nn.MultiheadAttention(6, 2)), "L,N,6"), ss.trace(FlashAttention(), "N,L,8"),
               ss.trace(nn.LocalResponseNorm(2), "N,4,H,W")]
    reached = {SAVED.get(mem._kind(layer)) for rep in traced for layer in rep.layers}
    assert set(SAVED.values()) - reached == set()


# ------------------------------------------------------------------ solving budgets, the command line

def test_largest_batch_in_24_gib_is_at_the_boundary_of_the_formula():
    rep = ss.trace(ss.zoo.resnet50(), "N,3,224,224")
    mem = rep.memory(training=True, optimizer="adam")
    answer = rep.solve(mem.total <= 24 * 2**30)
    N = rep.symbols[0]
    assert str(answer) == "1 ≤ N ≤ 295"
    assert mem.total.subs(N, 295) <= 24 * 2**30 < mem.total.subs(N, 296)
    assert mem.params == mem.grads == 4 * rep.params and mem.optimizer == 8 * rep.params
    assert str(mem).splitlines()[0] == "memory in bytes, float32, training (saved for backward):"


def test_largest_resolution_at_a_fixed_batch():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, stride=2), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(32, 10)).eval()
    rep = ss.trace(model, "8,3,S,S")
    mem = rep.memory(dtype=torch.float16)
    answer = rep.solve(mem.total <= 2**24)
    (S,) = rep.symbols
    top = max(hi for box in answer.boxes for part in box for lo, hi, m, r in part.pieces)
    assert mem.total.subs(S, top) <= 2**24 < mem.total.subs(S, top + 1)


def test_parse_bytes_reads_units_and_refuses_the_rest():
    from symshape.memory import parse_bytes

    assert [parse_bytes(t) for t in ("24GiB", "16GB", "512 MiB", "1.5KiB", "7")] == [24 * 2**30, 16 * 10**9,
                                                                                       512 * 2**20, 1536, 7]
    for bad in ("", "GiB", "1e9", "2**30", "24 GiBs", "1.2.3GB", "-4GB"):
        with pytest.raises(ss.ShapeError, match="cannot read the memory size"):
            parse_bytes(bad)


def test_optimizer_must_be_known():
    rep = ss.trace(nn.Linear(3, 4), "N,3")
    with pytest.raises(ss.ShapeError, match=r"optimizer must be None, 'sgd', 'adam' or 'adamw', got 'lion'"):
        rep.memory(training=True, optimizer="lion")
    assert rep.memory(training=True, optimizer="sgd").optimizer == 16 * 4


def test_alpha_dropout_is_refused_by_name():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AlphaDropout(0.2)), "N,3,H,W")
    with pytest.raises(ss.ShapeError) as err:
        rep.memory(training=True)
    assert str(err.value) == ("layer '1' (AlphaDropout): symshape has no memory rule for it (what AlphaDropout saves "
                              "is not measured)")


def test_a_layer_without_a_memory_rule_is_named():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU()), "N,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"^layer '1' \(PReLU\): symshape has no memory rule"):
        rep.memory(training=True)


def _cli(capsys, *argv):
    from symshape.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_solve_max_memory(capsys):
    code, out, err = _cli(capsys, "solve", "resnet50", "--input", "N,3,224,224", "--max-memory", "24GiB",
                          "--training", "--optimizer", "adam")
    assert (code, out.splitlines()[0]) == (0, "1 ≤ N ≤ 295")
    code, out, err = _cli(capsys, "solve", "resnet50", "--input", "N,3,224,224", "--max-memory", "24 gigs")
    assert code == 2 and "cannot read the memory size '24 gigs'" in err
    code, out, err = _cli(capsys, "solve", "resnet50", "--input", "N,3,224,224", "--training")
    assert code == 2 and "--training and --optimizer go with --max-memory" in err


def test_cli_summary_shows_memory_at_the_sizes(capsys):
    code, out, err = _cli(capsys, "summary", "seed_case1", "--at", "H=32,W=32")
    rep = ss.trace(ss.zoo.seed_case1(), "1,3,H,W")
    at = {s: 32 for s in rep.symbols}
    peak = sympy.sympify(rep.memory().activations).xreplace(at)
    assert out.splitlines()[-1] == (f"memory (float32 bytes): parameters {4 * rep.params:,}, inference peak of "
                                    f"activations {int(peak):,}, saved for backward in training "
                                    f"{int(sympy.sympify(rep.memory(training=True).activations).xreplace(at)):,}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpt_block_matches_torch(dtype):
    """The zoo's GPT-2 block (the README's example) at a small width, training and inference."""
    torch.manual_seed(0)
    sizes = [{"b": 1, "s": 5}, {"b": 2, "s": 8}, {"b": 3, "s": 13}]
    assert agree(ss.zoo.gpt_block(dim=32, heads=4), "b,s,32", lambda v: torch.randn(v["b"], v["s"], 32), sizes,
                 dtype) == 6


def test_json_has_a_memory_column_per_layer_and_reads_back():
    import json

    rep = ss.trace(ss.zoo.seed_case2(), "N,3,H,W")
    data = json.loads(rep.to_json())
    infer, train = rep.memory(), rep.memory(training=True)
    for item, (name, _, out), (_, _, saved) in zip(data["layers"], infer.layers, train.layers):
        assert item["name"] == name
        assert item["memory"] == {"dtype": "float32", "output_bytes": str(out), "saved_bytes": str(saved)}
    back = ss.Report.from_json(rep.to_json())
    assert back.memory(training=True) == train and back.memory().activations == infer.activations
    prelu = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU()), "N,3,H,W")
    assert all("memory" not in item for item in json.loads(prelu.to_json())["layers"])


_HEAVY = {"alexnet", "vgg11", "vgg16", "plainnet50", "resnet50", "unet", "mobilenet_v2", "alexnet2012", "vit_tiny"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _HEAVY else n for n in ss.zoo.MODELS])
def test_zoo_matches_torch(name):
    """Each zoo model at batch 2 and its smallest square size, in training and in eval."""
    entry = ss.zoo.MODELS[name]
    c = int(entry.input.split(",")[1])
    torch.manual_seed(0)
    model = entry.factory()
    rep = ss.trace(model, f"N,{c},H,W")
    h = next(h for h in range(1, 600) if not rep.violations(N=2, H=h, W=h))
    assert agree(model, f"N,{c},H,W", lambda s: torch.randn(2, c, h, h), [{"N": 2, "H": h, "W": h}]) == 2


# ------------------------------------------------------------------ attention and local response norm



@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("weights", _WEIGHTS)
@pytest.mark.parametrize("p", [0.0, 0.2])
@pytest.mark.parametrize("heads", [2, 3])
def test_multihead_attention_matches_torch(batch_first, bias, weights, p, heads):
    """Flash and math attention, the written-out path with weights, the fused inference fast path
    (batch_first, an even number of heads, biases), after a linear and on the model's input."""
    torch.manual_seed(0)
    need, average = _WEIGHTS[weights]
    mha = SelfAttention(nn.MultiheadAttention(6, heads, dropout=p, bias=bias, batch_first=batch_first), need, average)
    make = lambda size: torch.randn(size["A"], size["B"], 6)  # noqa: E731
    for model in (mha, nn.Sequential(nn.Linear(6, 6), mha)):
        agree(model, "A,B,6", make, [{"A": 2, "B": 5}, {"A": 3, "B": 4}])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("p", [0.0, 0.2])
def test_multihead_attention_in_16_bits(dtype, p):
    """The math path upcasts 16-bit inputs to float32 (what it saves is float32); flash keeps a
    float32 log-sum-exp."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), SelfAttention(nn.MultiheadAttention(6, 3, dropout=p, batch_first=True)))
    agree(model, "A,B,6", lambda size: torch.randn(size["A"], size["B"], 6), [{"A": 2, "B": 5}], dtype)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_scaled_dot_product_attention_matches_torch(causal, dtype):
    torch.manual_seed(0)
    agree(FlashAttention(causal=causal), "N,L,8", lambda size: torch.randn(size["N"], size["L"], 8),
           [{"N": 2, "L": 5}, {"N": 3, "L": 7}], dtype)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("first", [False, True])
def test_local_response_norm_matches_torch(size, first):
    torch.manual_seed(0)
    lrn = nn.LocalResponseNorm(size)
    model = nn.Sequential(lrn) if first else nn.Sequential(nn.Conv2d(4, 4, 1), lrn)
    agree(model, "N,4,H,W", lambda s: torch.randn(s["N"], 4, s["H"], s["W"]),
           [{"N": 2, "H": 5, "W": 6}, {"N": 3, "H": 4, "W": 7}], torch.float64)


class _Cross(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x * 2, x * 2, need_weights=False)[0]


class _Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, attn_mask=torch.ones(4, 4, dtype=torch.bool), need_weights=False)[0]


@pytest.mark.parametrize("model, spec, why", [
    (_Cross(), "N,4,6", "an attention whose query, key and value are not one tensor (self-attention)"),
    (_Masked(), "N,4,6", "MultiheadAttention with an attn_mask"),
    (_Fn(lambda x: F.scaled_dot_product_attention(x, x, x, dropout_p=0.1)), "N,2,L,8",
     "scaled_dot_product_attention on its math path (dropout_p > 0, inputs not 4-D, or a value head size other "
     "than the query's): torch runs flash attention on CPU only without these"),
    (_Fn(lambda x: F.scaled_dot_product_attention(*[x.transpose(1, 2)] * 3)), "N,L,2,8",
     "scaled_dot_product_attention on a strided query (its output takes the query's strides, which symshape does "
     "not follow): make the query contiguous"),
])
def test_attention_outside_the_rules_is_refused_by_name(model, spec, why):
    rep = ss.trace(model, spec)
    layer = next(layer for layer in rep.layers if "attention" in layer.kind.lower())
    for training in (True, False):
        with pytest.raises(ss.ShapeError) as err:
            rep.memory(training=training)
        assert str(err.value) == f"layer {layer.name!r} ({layer.kind}): symshape has no memory rule for {why}"


# ------------------------------------------------------------------ the memory column of the tables

def _small():
    return ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(2)), "N,3,H,W")


def test_text_table_has_a_memory_column_only_when_asked():
    rep = _small()
    assert "saved" not in str(rep) and "saved" not in rep.summary(depth=1)
    # conv: its input (3 channels); batch norm: its input and 2 x 8 statistics; ReLU in place: the batch norm's
    # output it overwrote; max pool: that same storage (counted once) and int64 indices
    assert rep.summary(memory=torch.bfloat16).splitlines() == [
        "Sequential  input (N, 3, H, W)",
        "layer  type         output shape                    params       MACs                saved (bf16)  RF r/j/P",
        "-----  -----------  ------------------------------  ------  ---------  --------------------------  --------",
        "0      Conv2d       (N, 8, H, W)                       224  216*H*N*W                     6*H*N*W  3/1/1",
        "1      BatchNorm2d  (N, 8, H, W)                        16          0               16*H*N*W + 32  3/1/1",
        "2      ReLU         (N, 8, H, W)                         0          0                    16*H*N*W  3/1/1",
        "3      MaxPool2d    (N, 8, floor(H/2), floor(W/2))       0          0  64*N*floor(H/2)*floor(W/2)  4/2/1",
        "-----  -----------  ------------------------------  ------  ---------  --------------------------  --------",
        "output (N, 8, floor(H/2), floor(W/2))",
        "params 240",
        "MACs   216*H*N*W",
        "saved  38*H*N*W + 64*N*floor(H/2)*floor(W/2) + 32 bytes for backward in training (bf16)",
        "runs when H >= 2, W >= 2",
        "MACs: multiply-accumulates of convs and matrix products, bias excluded; FLOPs = 2 x MACs"]
    mem = rep.memory(training=True, dtype=torch.bfloat16)
    saved = ss.memory.saved_column(rep, torch.bfloat16)[1]
    assert saved == [b for _, _, b in mem.layers] and sympy.expand(sympy.Add(*saved) - mem.activations) == 0


def test_grouped_summary_sums_the_memory_column_per_group():
    rep = ss.trace(ss.zoo.seed_case2(), "N,3,H,W")
    mem = rep.memory(training=True)
    lines = rep.summary(depth=1, memory=True).splitlines()
    assert lines[1].split()[-2:] == ["saved", "(fp32)"]
    groups = {}
    for name, _, b in mem.layers:
        groups.setdefault(name.split(".")[0], []).append(b)
    for line in lines[3:3 + len(groups)]:
        name, cell = line.split()[0], line[line.rindex("  "):].strip()
        assert cell == ss.fmt(sympy.Add(*groups[name])) or cell == f"{int(sympy.Add(*groups[name])):,}"


def test_markdown_and_latex_tables_have_the_memory_column_when_asked():
    from latex_check import check_latex

    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "N,3,H,W")
    assert "saved" not in rep.to_markdown() and "Saved" not in rep.to_latex()
    md = rep.to_markdown({"N": 2, "H": 8, "W": 8}, memory=True).splitlines()
    assert md[5:9] == ["| layer | type | output shape | params | MACs | saved (fp32) | RF $r/j/P$ |",
                       "|---|---|---|---:|---:|---:|---|",
                       "| `0` | Conv2d | $\\left(2, 8, 6, 6\\right)$ | 224 | $15{,}552$ | $1536$ | $3/1/0$ |",
                       "| `1` | ReLU | $\\left(2, 8, 6, 6\\right)$ | 0 | $0$ | $2304$ | $3/1/0$ |"]
    assert md[10] == ("Output $\\left(2, 8, 6, 6\\right)$, 224 parameters, $15{,}552$ MACs, $3840$ bytes saved for "
                      "backward in training.")
    tex = rep.to_latex(memory=torch.float16)
    check_latex(tex)
    check_latex(rep.to_latex(document=True, memory=torch.float16))
    lines = tex.splitlines()
    assert lines[4:8] == [
        "\\begin{tabular}{lllrrrl}", "\\toprule",
        "Layer & Type & Output shape & Parameters & MACs & Saved (fp16) & RF $r/j/P$ \\\\", "\\midrule"]
    assert lines[9] == ("\\texttt{1} & ReLU & $\\left(N, 8, H - 2, W - 2\\right)$ & 0 & $0$ & "
                        "$16 N \\left(H - 2\\right) \\left(W - 2\\right)$ & $3/1/0$ \\\\")


def test_memory_column_needs_a_floating_dtype_and_a_rule():
    rep = _small()
    with pytest.raises(ss.ShapeError, match=r"^memory= takes a floating torch dtype \(such as torch.bfloat16\) or "
                                            r"True for float32, got torch.int8$"):
        rep.summary(memory=torch.int8)
    prelu = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU()), "N,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"^layer '1' \(PReLU\): symshape has no memory rule"):
        prelu.to_markdown(memory=True)


def test_cli_summary_memory_column(capsys):
    code, out, err = _cli(capsys, "summary", "seed_case1", "--memory", "bfloat16")
    rep = ss.trace(ss.zoo.seed_case1(), "1,3,H,W")
    assert code == 0 and out.startswith(rep.summary(memory=torch.bfloat16))
    code, out, err = _cli(capsys, "summary", "seed_case1", "--memory", "float16", "--format", "latex")
    assert code == 0 and "& Saved (fp16) &" in out
    code, out, err = _cli(capsys, "summary", "seed_case1", "--memory", "float32", "--format", "json")
    assert code == 2 and "--memory adds a column to the text, Markdown and LaTeX tables" in err


def test_a_batch_of_one_folded_by_a_linear_layer_is_a_view_the_formula_counts_as_a_copy():
    """The known limit of the layouts: a linear layer on a permuted input folds its leading dims by
    a copy, except where the batch is 1 (torch then views them). The formula counts the copy: at
    batch 1 it overstates the inference peak by the copy's bytes, and the saved bytes by as much
    where another op saves the storage the linear layer then reads (here none does: equal)."""
    model = nn.Sequential(nn.Conv2d(4, 4, 1), _Fn(lambda x: x.permute(0, 2, 3, 1)), nn.Linear(4, 6, bias=False))
    rep = ss.trace(model, "N,4,H,W")
    train, infer = rep.memory(training=True), rep.memory()
    for n in (1, 2):
        values = {s: {"N": n, "H": 5, "W": 7}[s.name] for s in rep.symbols}
        x = torch.randn(n, 4, 5, 7)
        copy = 4 * n * 4 * 5 * 7 if n == 1 else 0  # the input copy torch skips at batch 1
        assert sympy.sympify(train.activations).xreplace(values) == saved_bytes(model.train(), x)
        assert sympy.sympify(infer.activations).xreplace(values) == inference_peak(model.eval(), x) + copy
