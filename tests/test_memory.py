"""rep.memory() against torch: autograd's saved tensors (saved_tensors_hooks, unique storages,
parameters and buffers excluded) in training, and the live tensors of the forward (a
TorchDispatchMode over the torch.fx graph, which frees every value after its last use) in inference."""
import random
import weakref

import pytest
import sympy
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import symshape as ss
from symshape.memory import SAVED


def _state_ptrs(model):
    return {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}


def saved_bytes(model, x) -> int:
    """The bytes autograd saves for backward in one training forward: unique storages, the
    model's parameters and buffers excluded."""
    excluded, seen = _state_ptrs(model), {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in excluded:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


class _Live(TorchDispatchMode):
    """The peak of the bytes of live storages after each op (the input and every op output
    that is still referenced), parameters and buffers excluded."""

    def __init__(self, excluded, x):
        super().__init__()
        self.excluded, self.refs, self.peak = excluded, [weakref.ref(x)], x.untyped_storage().nbytes()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.refs.extend(weakref.ref(t) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        live = {}
        for ref in self.refs:
            t = ref()
            if t is not None:
                st = t.untyped_storage()
                if st.data_ptr() not in self.excluded:
                    live[st.data_ptr()] = st.nbytes()
        self.peak = max(self.peak, sum(live.values()))
        return out


def inference_peak(model, x) -> int:
    gm = torch.fx.symbolic_trace(model)
    mode = _Live(_state_ptrs(model), x)
    with torch.no_grad(), mode:
        gm(x)
    return mode.peak


def agree(model, spec, make, sizes, dtype=torch.float32, modes=(True, False)) -> int:
    """rep.memory() of *model* traced at *spec* against torch, for each mode (True: the bytes saved
    for backward in training; False: the inference peak in eval) at each size of *sizes* (dicts of
    the spec's size names) where the model runs; *make(size)* builds the input. The count of
    comparisons made."""
    model = model.to(dtype)
    rep = ss.trace(model, spec)
    count = 0
    for training in modes:
        mem = rep.memory(training=training, dtype=dtype)
        for size in sizes:
            values = {s: size[s.name] for s in rep.symbols}
            if rep.violations(**{s.name: v for s, v in values.items()}):
                continue
            x = make(size)
            x = x.to(dtype) if x.is_floating_point() else x
            want = saved_bytes(model.train(), x) if training else inference_peak(model.eval(), x)
            got = sympy.sympify(mem.activations).subs(values)
            assert got == want, (size, "training" if training else "inference", model)
            count += 1
    return count


# ------------------------------------------------------------------ random networks

class SelfAttention(nn.Module):
    """nn.MultiheadAttention on one tensor, returning its output (the weights are dropped)."""

    def __init__(self, mha, need_weights=False, average=True):
        super().__init__()
        self.mha, self.need_weights, self.average = mha, need_weights, average

    def forward(self, x):
        return self.mha(x, x, x, need_weights=self.need_weights, average_attn_weights=self.average)[0]


class FlashAttention(nn.Module):
    """A hand-written attention through F.scaled_dot_product_attention on contiguous heads."""

    def __init__(self, dim=8, causal=False):
        super().__init__()
        self.qkv, self.causal = nn.Linear(dim, 3 * dim), causal

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), is_causal=self.causal)


def _act(rng):
    return rng.choice([lambda: nn.ReLU(), lambda: nn.ReLU(inplace=True), lambda: nn.GELU(), lambda: nn.SiLU(),
                       lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.Hardswish(), lambda: nn.LeakyReLU(0.1),
                       lambda: nn.ReLU6(), lambda: nn.ELU(), lambda: nn.SiLU(inplace=True), lambda: nn.Mish(),
                       lambda: nn.Hardsigmoid(), lambda: nn.Softplus(), lambda: nn.LeakyReLU(0.2, inplace=True),
                       lambda: nn.ReLU6(inplace=True)])()


def _norm(rng, c):
    return rng.choice([lambda: nn.BatchNorm2d(c), lambda: nn.GroupNorm(2 if c % 2 == 0 else 1, c),
                       lambda: nn.InstanceNorm2d(c), lambda: nn.InstanceNorm2d(c, affine=True),
                       lambda: nn.LocalResponseNorm(rng.choice([2, 3, 5])), lambda: nn.Identity()])()


class Residual(nn.Module):
    def __init__(self, rng, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), _norm(rng, c), _act(rng),
                                  nn.Conv2d(c, c, 3, padding=1))
        self.act = _act(rng)

    def forward(self, x):
        return self.act(self.body(x) + x)


class Concat(nn.Module):
    def __init__(self, rng, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 1)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), _act(rng))

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class Gate(nn.Module):
    """Squeeze-and-excitation: a product of the features with a per-channel sigmoid."""

    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))


class TokenAttention(nn.Module):
    """Self-attention over the H·W positions, added back to the features: a layer norm over the
    channels, then nn.MultiheadAttention (batch first or not, with or without weights, biases and
    dropout) or a one-head F.scaled_dot_product_attention (flash)."""

    def __init__(self, rng, c):
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.flash = rng.random() < 0.3
        if self.flash:
            self.qkv = nn.Linear(c, 3 * c)
        else:
            heads = rng.choice([h for h in (1, 2, 3, 4) if c % h == 0])
            self.batch_first = rng.choice([True, False])
            self.mha = SelfAttention(nn.MultiheadAttention(c, heads, dropout=rng.choice([0.0, 0.1]),
                                                           bias=rng.choice([True, False]), batch_first=self.batch_first),
                                     *rng.choice(list(_WEIGHTS.values())))

    def forward(self, x):
        n, c, h, w = x.shape
        t = self.norm(x.flatten(2).transpose(1, 2))  # (N, H·W, C)
        if self.flash:
            q, k, v = self.qkv(t).chunk(3, -1)
            y = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        elif self.batch_first:
            y = self.mha(t)
        else:
            y = self.mha(t.transpose(0, 1).contiguous()).transpose(0, 1)
        return x + y.transpose(1, 2).reshape(n, c, h, w)


class Split(nn.Module):
    """ShuffleNet's split: half the channels through a conv, the other half as they are, concatenated."""

    def __init__(self, rng, c):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(c // 2, c // 2, 3, padding=1), _act(rng))

    def forward(self, x):
        a, b = x.chunk(2, 1)
        return torch.cat([b, self.conv(a)], 1)


class TokenMLP(nn.Module):
    """ConvNeXt's MLP on channels-last features: linear layers on a permuted input, added back."""

    def __init__(self, rng, c):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(c, 2 * c, bias=rng.choice([True, False])), _act(rng), nn.Linear(2 * c, c)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)


_WEIGHTS = {"none": (False, True), "averaged": (True, True), "per_head": (True, False)}


def random_net(seed: int) -> nn.Module:
    """Convs with norms and activations, residual, concat, split, gate, attention and token-MLP
    blocks, pooling and dropout, in a random order, and a head that pools, flattens or keeps the features."""
    rng = random.Random(seed)
    c = c0 = rng.choice([3, 4])
    layers = []
    for _ in range(rng.randint(2, 5)):
        pick = rng.choice(["conv", "res", "cat", "pool", "drop", "gate", "attn", "split", "mlp"])
        if pick == "split" and c % 2:
            pick = "gate"
        if pick == "conv":
            out = rng.choice([4, 6, 8])
            layers += [nn.Conv2d(c, out, rng.choice([1, 3]), padding=1, stride=rng.choice([1, 2])), _norm(rng, out),
                       _act(rng)]
            c = out
        elif pick == "res":
            layers.append(Residual(rng, c))
        elif pick == "cat":
            layers.append(Concat(rng, c))
            c *= 2
        elif pick == "pool":
            layers.append(rng.choice([nn.MaxPool2d(2), nn.AvgPool2d(2), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                                      nn.AvgPool2d(3, 1, 1), nn.AdaptiveMaxPool2d(3), nn.AdaptiveAvgPool2d(4)]))
        elif pick == "drop":
            layers.append(rng.choice([nn.Dropout(0.2), nn.Dropout2d(0.3), nn.Dropout(0.0), nn.Dropout(0.1, inplace=True)]))
        elif pick == "gate":
            layers.append(Gate(c))
        elif pick == "split":
            layers.append(Split(rng, c))
        elif pick == "mlp":
            layers.append(TokenMLP(rng, c))
        else:
            layers.append(TokenAttention(rng, c))
    head = rng.choice([[nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 5)],
                       [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * c, 5)],
                       [nn.Flatten(1)], []])
    net = nn.Sequential(*layers, *head)
    net.in_channels = c0
    return net


SIZES = [(2, 8, 8), (3, 12, 10), (4, 16, 16), (1, 7, 9), (5, 6, 6)]
SEEDS = range(40)
CAMPAIGN = range(40, 1040)
COUNT = {"training": 0, "inference": 0}


def check_random_net(seed: int, training: bool) -> int:
    """Random network *seed* against torch in one mode at each of SIZES where it runs; the count of comparisons."""
    torch.manual_seed(seed)
    model = random_net(seed)
    c = model.in_channels
    sizes = [{"N": n, "H": h, "W": w} for n, h, w in SIZES]
    count = agree(model, f"N,{c},H,W", lambda s: torch.randn(s["N"], c, s["H"], s["W"]), sizes, modes=(training,))
    COUNT["training" if training else "inference"] += count
    return count


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("seed", SEEDS)
def test_random_network_matches_torch(seed, training):
    assert check_random_net(seed, training) > 0


@pytest.mark.slow
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("seed", CAMPAIGN)
def test_random_network_campaign(seed, training):
    """The campaign: 1,000 more networks (run with -m slow)."""
    assert check_random_net(seed, training) > 0


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
        "saved  2*(19*H*N*W + 32*N*floor(H/2)*floor(W/2) + 16) bytes for backward in training (bf16)",
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
    import sys, os
    sys.path.insert(0, os.path.dirname(__file__))
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
