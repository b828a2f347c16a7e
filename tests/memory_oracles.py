"""The torch oracles of the memory tests: autograd's saved tensors (saved_tensors_hooks, unique
storages, parameters and buffers excluded) in training, and the live tensors of the forward (a
TorchDispatchMode over the torch.fx graph, which frees every value after its last use) in
inference; :func:`agree` sets rep.memory() against them. Also the attention modules the tests share."""
import weakref

import sympy
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import symshape as ss


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
            got = sympy.sympify(mem.activations).xreplace(values)
            assert got == want, (size, "training" if training else "inference", model)
            count += 1
    return count


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


_WEIGHTS = {"none": (False, True), "averaged": (True, True), "per_head": (True, False)}
