"""Rules for the recurrent layers nn.RNN, nn.LSTM and nn.GRU (one rule for the three: they differ
in their number of gates and in LSTM's cell state and projection).

>>> import torch.nn as nn
>>> from symshape.symbols import symbols
>>> L, N = symbols("L N")
>>> out = recurrent(nn.LSTM(8, 16, num_layers=2, bidirectional=True), (L, N, 8))
>>> out.shape
((L, N, 32), ((4, N, 16), (4, N, 16)))
>>> out.macs
9216*L*N
"""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..symbols import ShapeError
from .common import at_least, equal, fmt_shape
from .elementwise import same_size
from .registry import Out, register

__all__ = ["recurrent"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


@register(nn.RNN, nn.LSTM, nn.GRU)
def recurrent(m: nn.RNNBase, x, hx=None):
    """Input (L, N, I), batch_first (N, L, I), or unbatched (L, I); I = input_size, L >= 1.
    With D = 2 if bidirectional else 1, H = hidden_size and H_out = proj_size or H:
    output (L, N, D·H_out) (batch_first (N, L, D·H_out), unbatched (L, D·H_out)); h_n
    (D·num_layers, N, H_out) (unbatched without N); LSTM's c_n is (D·num_layers, N, H). LSTM returns
    (output, (h_n, c_n)), GRU and RNN (output, h_n); a given hx must have those shapes.

    MACs: the gate matrix products, bias excluded, what FlopCounterMode counts for the op's
    decomposition (its addmm/mm calls; on the meta device, and on the CPU for GRU and RNN: the CPU's
    fused oneDNN LSTM kernel counts 0, which symshape does not follow):
    L·N·D·Σ_layers (G·H·(I_layer + H_out) + H_out·H if proj_size), G = 4 gates (LSTM), 3 (GRU) or
    1 (RNN), I_layer = I for the first layer and D·H_out for the others."""
    kind = type(m).__name__
    if len(x) not in (2, 3):
        raise ShapeError(f"{kind}: expected input to be 2-d (L, input_size) unbatched or 3-d batched, got {len(x)}-d "
                         f"{fmt_shape(x)}")
    batched = len(x) == 3
    if batched:
        n, length = (x[0], x[1]) if m.batch_first else (x[1], x[0])
    else:
        n, length = sympy.Integer(1), x[0]
    features, hidden, proj = x[-1], m.hidden_size, getattr(m, "proj_size", 0)
    h_out = proj or hidden
    d = 2 if m.bidirectional else 1
    reqs = [at_least(length, 1, f"{kind} needs a sequence length larger than 0")]
    if same_size(features, m.input_size) is False:
        raise ShapeError(f"{kind}: the input's last dim must be input_size={m.input_size}, got {features}")
    if same_size(features, m.input_size) is None:
        reqs.append(equal(features, m.input_size, f"{kind}: the input's last dim must be input_size={m.input_size}"))
    lead = (n,) if batched else ()
    h_n = (sympy.Integer(d * m.num_layers), *lead, sympy.Integer(h_out))
    c_n = (sympy.Integer(d * m.num_layers), *lead, sympy.Integer(hidden))
    if hx is not None:
        given = tuple(hx) if m.mode == "LSTM" else (hx,)
        for got, want, what in zip(given, (h_n, c_n), ("hidden", "cell")):
            reqs += _same_shape(got, want, f"{kind}: expected {what} state of shape {fmt_shape(want)}")
    if batched:
        out = (n, length, sympy.Integer(d * h_out)) if m.batch_first else (length, n, sympy.Integer(d * h_out))
    else:
        out = (length, sympy.Integer(d * h_out))
    gates = _GATES[m.mode]
    per_step = sum(gates * hidden * ((m.input_size if layer == 0 else d * h_out) + h_out) + (h_out * hidden if proj else 0)
                   for layer in range(m.num_layers))
    macs = length * n * d * per_step
    return Out((out, (h_n, c_n) if m.mode == "LSTM" else h_n), macs, tuple(reqs))


def _same_shape(got, want, why: str) -> list:
    if len(got) != len(want) or any(same_size(a, b) is False for a, b in zip(got, want)):
        raise ShapeError(f"{why}, got {fmt_shape(got)}")
    return [equal(b, a, why) for a, b in zip(got, want) if not same_size(a, b)]
