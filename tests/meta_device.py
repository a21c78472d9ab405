"""A bare stand-in accelerator for unit tests of device discipline: the ``meta`` device.

Tensors on ``meta`` have shapes and dtypes but no values, so code written for a GPU runs on
them and shows what it would put on the device. :class:`MetaAccelerator` lets the host reads
that such code makes (``.cpu()``, ``.item()``, ``.tolist()``) succeed with placeholder values
(ones), so a function runs to its end, and records every float64 tensor made on ``meta`` (an
Apple GPU has no float64) and every copy of host data to ``meta`` (a host-to-device transfer:
on a GPU, a synchronisation when it happens every step). The values are meaningless: it checks
dtypes, devices and copies, never numbers.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

META = torch.device("meta")
_FROM_HOST_DATA = {torch.tensor, torch.as_tensor, torch.Tensor.new_tensor}


class MetaAccelerator:
    """``with MetaAccelerator() as acc:`` runs the block with ``meta`` as the accelerator (module doc)."""

    def __init__(self) -> None:
        self.float64_ops: list[str] = []
        """aten ops that returned a float64 tensor on ``meta``."""
        self.uploads = 0
        """Copies of host data (CPU tensors, Python numbers) to ``meta``."""
        self._modes = (_Constructors(self), _Ops(self))

    def __enter__(self) -> "MetaAccelerator":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


class _Constructors(TorchFunctionMode):
    """Counts ``torch.tensor``-style constructors that put host data on ``meta`` (they dispatch no copy)."""

    def __init__(self, acc: MetaAccelerator):
        super().__init__()
        self.acc = acc

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        data = args[1] if func is torch.Tensor.new_tensor else args[0] if args else None
        if func in _FROM_HOST_DATA and isinstance(out, torch.Tensor) and out.is_meta \
                and not (isinstance(data, torch.Tensor) and data.is_meta):
            self.acc.uploads += 1
        return out


class _Ops(TorchDispatchMode):
    def __init__(self, acc: MetaAccelerator):
        super().__init__()
        self.acc = acc

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        if func is torch.ops.aten._local_scalar_dense.default and tensors[0].is_meta:
            return True if tensors[0].dtype == torch.bool else 1.0 if tensors[0].is_floating_point() else 1
        if func.overloadpacket in (torch.ops.aten._to_copy, torch.ops.aten.to):
            target = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.device)), None)
            if tensors[0].is_meta and target == torch.device("cpu"):
                dtype = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.dtype)), None)
                return torch.ones(tensors[0].shape, dtype=dtype or tensors[0].dtype)
            if target == META and not tensors[0].is_meta:
                self.acc.uploads += 1
        if func is torch.ops.aten.copy_.default and tensors[0].is_meta and not tensors[1].is_meta:
            self.acc.uploads += 1
        out = func(*args, **kwargs)
        self.acc.float64_ops += [str(func) for o in tree_flatten(out)[0]
                                 if isinstance(o, torch.Tensor) and o.is_meta and o.dtype == torch.float64]
        return out
