"""What torch itself does: output shape on the meta device and FlopCounterMode's MACs."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def torch_shape_and_macs(module, *shapes, device="meta"):
    """``(output shape or exception, MACs = flops // 2)`` of running *module* on zero tensors."""
    xs = [torch.zeros(s, device=device) for s in shapes]
    module = module.to(device) if device == "meta" else module
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = module(*xs)
    except Exception as err:  # torch rejects the size: the caller compares with the domain
        return err, None
    return tuple(out.shape), counter.get_total_flops() // 2
