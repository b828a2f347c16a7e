"""The model as it was: what a trace may touch while a forward runs on stand-ins (attributes,
caches) is put back (:func:`unchanged`), and the model's floating dtype for torch's tensor size limit
(:func:`itemsize`)."""
from __future__ import annotations

import contextlib
import itertools

import torch.nn as nn

_ABSENT = object()


@contextlib.contextmanager
def unchanged(model: nn.Module):
    """The model's modules as they were before: a forward run on stand-ins or fx proxies may fill
    a cache (timm's attention-bias caches, keyed by device, then hold a stand-in's device and a
    tensor with autograd history, which a later deep copy refuses) or set an attribute; what it
    adds, replaces or puts in a plain dict attribute is undone. Under FX_LOCK, so that no other
    trace's forward runs on the same model meanwhile."""
    saved = []
    for module in model.modules():
        attrs = vars(module)
        saved.append((attrs, dict(attrs), [(v, dict(v)) for v in attrs.values() if type(v) is dict]))
    try:
        yield
    finally:
        for attrs, before, dicts in saved:
            for key in [k for k in attrs if k not in before]:
                del attrs[key]
            for key, value in before.items():
                if attrs.get(key, _ABSENT) is not value:
                    attrs[key] = value
            for obj, content in dicts:
                if len(obj) != len(content) or any(obj.get(k, _ABSENT) is not v for k, v in content.items()):
                    obj.clear()
                    obj.update(content)


def itemsize(model: nn.Module) -> int:
    """Bytes per element of the model's floating dtype (its first floating parameter or buffer;
    else torch's default dtype), for torch's limit of 2**63 - 1 bytes per tensor."""
    import torch

    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point() and not isinstance(t, nn.parameter.UninitializedTensorMixin):
            return t.element_size()
    return torch.empty((), dtype=torch.get_default_dtype()).element_size()

