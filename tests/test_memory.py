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
        self.excluded, self.refs, self.peak = excluded, [weakref.ref(x)], 0

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


# ------------------------------------------------------------------ random networks

def _act(rng):
    return rng.choice([lambda: nn.ReLU(), lambda: nn.ReLU(inplace=True), lambda: nn.GELU(), lambda: nn.SiLU(),
                       lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.Hardswish(), lambda: nn.LeakyReLU(0.1),
                       lambda: nn.ReLU6(), lambda: nn.ELU()])()


def _norm(rng, c):
    return rng.choice([lambda: nn.BatchNorm2d(c), lambda: nn.GroupNorm(2 if c % 2 == 0 else 1, c), lambda: nn.InstanceNorm2d(c),
                       lambda: nn.Identity()])()


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


def random_net(seed: int) -> nn.Module:
    rng = random.Random(seed)
    c = c0 = rng.choice([3, 4])
    layers = []
    for _ in range(rng.randint(2, 5)):
        pick = rng.choice(["conv", "res", "cat", "pool", "drop", "gate"])
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
            layers.append(rng.choice([nn.MaxPool2d(2), nn.AvgPool2d(2), nn.MaxPool2d(3, 2, 1, ceil_mode=True)]))
        elif pick == "drop":
            layers.append(rng.choice([nn.Dropout(0.2), nn.Dropout2d(0.3), nn.Dropout(0.0)]))
        else:
            layers.append(Gate(c))
    head = rng.choice([[nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 5)],
                       [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * c, 5)],
                       [nn.Flatten(1)]])
    net = nn.Sequential(*layers, *head)
    net.in_channels = c0
    return net


SIZES = [(2, 8, 8), (3, 12, 10), (4, 16, 16)]
SEEDS = range(40)
COUNT = {"training": 0, "inference": 0}


def _sizes(rep, n, h, w):
    return {k: v for k, v in {"N": n, "H": h, "W": w}.items() if k in {s.name for s in rep.symbols}}


def _fits(rep, sizes):
    return not rep.violations(**sizes)


@pytest.mark.parametrize("seed", SEEDS)
def test_training_saved_bytes_match_autograd(seed):
    torch.manual_seed(seed)
    model = random_net(seed).train()
    c = model.in_channels
    rep = ss.trace(model, f"N,{c},H,W")
    mem = rep.memory(training=True)
    for n, h, w in SIZES:
        sizes = _sizes(rep, n, h, w)
        if not _fits(rep, sizes):
            continue
        want = saved_bytes(model, torch.randn(n, c, h, w))
        got = sympy.sympify(mem.activations).subs({s: sizes[s.name] for s in rep.symbols})
        COUNT["training"] += 1
        assert got == want, (seed, (n, h, w), model)


@pytest.mark.parametrize("seed", SEEDS)
def test_inference_peak_matches_live_tensors(seed):
    torch.manual_seed(seed)
    model = random_net(seed).eval()
    c = model.in_channels
    rep = ss.trace(model, f"N,{c},H,W")
    mem = rep.memory()
    for n, h, w in SIZES:
        sizes = _sizes(rep, n, h, w)
        if not _fits(rep, sizes):
            continue
        want = inference_peak(model, torch.randn(n, c, h, w))
        got = sympy.sympify(mem.activations).subs({s: sizes[s.name] for s in rep.symbols})
        COUNT["inference"] += 1
        assert got == want, (seed, (n, h, w), model)
