"""What torch itself does: output shape on the meta device and FlopCounterMode's MACs."""
from __future__ import annotations

import copy
import warnings

import torch
from torch.nn.modules.conv import _ConvTransposeNd
from torch.utils.flop_counter import FlopCounterMode


def torch_shape_and_macs(module, *shapes, device="meta"):
    """``(output shape or exception, MACs = flops // 2)`` of running *module* on zero tensors."""
    xs = [torch.zeros(s, device=device) for s in shapes]
    module = module.to(device) if device == "meta" else module
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = module(*xs)
    except Exception as err:  # torch rejects the size: the caller compares with the domain
        return err, None
    return tuple(out.shape), counter.get_total_flops() // 2


def torch_layers(modules, shape, device="meta"):
    """Run *modules* one after the other from a zero tensor of *shape*.

    Returns ``(records, failure)``: ``records[i] = (output shape, MACs)`` of each layer that ran,
    and ``failure = (index, exception)`` of the first layer torch rejected, or None.

    A layer whose output has a size-0 dim (from an input without one) runs again on the CPU, where
    torch is the judge: the meta kernels return empty tensors where the CPU raises (ConvTranspose,
    Upsample in the linear modes). Where the CPU raises, that is the failure, with torch's own
    message; where it runs (constant padding that crops to 0, FractionalMaxPool or Upsample in
    mode 'area' rounding to 0), the layer runs with an empty output, as symshape's domain says. A
    ConvTranspose is the exception: its CPU kernels disagree among themselves (at output width 0
    ConvTranspose2d and batched ConvTranspose1d return an empty tensor, unbatched ConvTranspose1d
    and ConvTranspose3d raise "Output size is too small"), so the domain excludes its empty outputs
    and here they count as rejected.
    """
    x = torch.zeros(shape, device=device)
    records = []
    for i, module in enumerate(modules):
        module.to(device)  # in place: the parameters must live where the input does
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = module(x)
                if 0 in y.shape and 0 not in x.shape:
                    if device == "meta":  # uninitialised CPU weights: only the shapes matter
                        copy.deepcopy(module).to_empty(device="cpu")(torch.zeros(x.shape))
                    if any(isinstance(m, _ConvTransposeNd) for m in module.modules()):
                        raise ValueError(f"empty output {tuple(y.shape)} from input {tuple(x.shape)}")
        except Exception as err:  # torch rejects the size here
            return records, (i, err)
        x = y
        records.append((tuple(x.shape), counter.get_total_flops() // 2))
    return records, None
