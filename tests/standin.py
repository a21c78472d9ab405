"""A stand-in accelerator: runs trainlab as if on a GPU, on a machine without one.

Tensors on the stand-in device are :class:`DeviceTensor` wrappers whose device is
``meta:0`` (so ``tensor.device.type`` is not ``"cpu"`` and every device-dependent branch
takes its accelerator side; trainlab's own shape-only ``meta`` tensors, which have no
index, stay what they are) and whose values live in a CPU tensor. :class:`StandinDevice`,
a ``TorchDispatchMode``, runs every ATen operation on those CPU values, so a run gives the
numbers a CPU run gives, and notes what a real accelerator would refuse or pay for:

- ``mixing``: a device tensor meeting a CPU tensor of one or more dimensions in one
  operation (CUDA raises; zero-dimensional CPU tensors are scalars to CUDA as well, and
  CPU indices are moved by indexing, so those count as copies instead);
- ``numpy``: ``.numpy()`` (or ``np.asarray``) of a device tensor (CUDA raises);
- ``generator``: a CPU generator drawing device numbers, or a device generator drawing
  CPU numbers (CUDA raises);
- ``float64``: a float64 tensor on the device (MPS has no float64);
- reads (device to host: ``.item()``, ``float()``, ``.tolist()``, ``.cpu()``, shapes that
  depend on values such as ``nonzero`` or a boolean mask) and copies (host to device),
  counted per source line: each is a host-device synchronisation.

Training steps are counted as optimizer steps (a global optimizer hook), so a test can
hold the reads and copies per step to a stated budget.

``torch.Generator(device=<stand-in>)`` gives a :class:`DeviceGenerator`: a CPU generator
marked as being on the device, so its numbers are the CPU's (a real GPU's are not).
"""

from __future__ import annotations

import sys
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils._python_dispatch import TorchDispatchMode

STANDIN = torch.device("meta", 0)
"""The stand-in accelerator's device, as recipes see it (plain ``meta`` stays the shape-only device)."""
_CPU = torch.device("cpu")

SOURCE = Path(__file__).resolve().parents[1] / "src" / "trainlab"
_HERE = str(Path(__file__).resolve())

aten = torch.ops.aten
# Copies between devices (``aten.to`` itself is seen in inference mode, where it is not decomposed).
_TRANSFERS = {aten._to_copy, aten.copy_, aten.copy, aten.to}
# Operations whose output's shape or value the host must read from the device: a synchronisation each.
_DATA_DEPENDENT = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default,
                   aten.unique_dim.default, aten.unique_consecutive.default, aten.is_nonzero.default,
                   aten.equal.default, aten.repeat_interleave.Tensor, aten.bincount.default}
# Indexing moves CPU indices to the device by itself (a copy, not an error).
_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
# Operations _note looks at even without CPU tensors among the arguments.
_NOTED = {getattr(packet, name) for packet in _TRANSFERS for name in packet.overloads()} | _DATA_DEPENDENT \
    | _INDEXING | {aten._local_scalar_dense.default}
# Operations that only compare tensors' metadata.
_QUERIES = {aten._has_compatible_shallow_copy_type.default}


class DeviceTensor(torch.Tensor):
    """A tensor on the stand-in device: ``meta:0`` to the outside, its values in the CPU tensor ``values``."""

    values: torch.Tensor

    @staticmethod
    def __new__(cls, values: torch.Tensor) -> "DeviceTensor":
        t = torch.Tensor._make_wrapper_subclass(
            cls, values.shape, strides=values.stride(), storage_offset=values.storage_offset(),
            dtype=values.dtype, layout=values.layout, device=STANDIN, requires_grad=values.requires_grad)
        t.values = values
        return t

    # A traceable wrapper subclass: Module.to() and friends swap such tensors whole instead of
    # assigning ``param.data``, which would keep the old ``values`` under the new metadata.
    def __tensor_flatten__(self) -> tuple[list[str], None]:
        return ["values"], None

    @staticmethod
    def __tensor_unflatten__(inner: dict, meta: Any, outer_size: Any, outer_stride: Any) -> "DeviceTensor":
        return DeviceTensor(inner["values"])

    # Indexing turns a Python list into an index tensor on the indexed tensor's device below ATen's
    # dispatch (a plain meta tensor without values would come back): make it a CPU tensor first,
    # which indexing then moves (a copy, as on a GPU).
    def __getitem__(self, index: Any) -> Any:
        return super().__getitem__(_list_indices(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(_list_indices(index), value)

    def __repr__(self, *, tensor_contents: Any = None) -> str:
        return f"DeviceTensor({self.values!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl  # straight to ATen, where StandinDevice works

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        raise RuntimeError(f"{func} on a stand-in device tensor outside the stand-in device")


def _list_indices(index: Any) -> Any:
    """``index`` with Python lists made CPU tensors (ints: int64, as indexing makes them)."""
    if isinstance(index, list):
        return torch.tensor(index, dtype=None if index else torch.long)
    if isinstance(index, tuple):
        return tuple(_list_indices(i) if isinstance(i, list) else i for i in index)
    return index


class _GeneratorType(type(torch._C.Generator)):  # type: ignore[misc]
    """``isinstance(g, torch.Generator)`` stays true of every generator while the stand-in replaces the class."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, torch._C.Generator)


class DeviceGenerator(torch._C.Generator, metaclass=_GeneratorType):
    """``torch.Generator`` while the stand-in runs: ``device=<stand-in>`` gives a CPU generator
    marked ``on_device``, whose ``device`` reads as the stand-in's."""

    def __new__(cls, device: Any = "cpu") -> "DeviceGenerator":
        on_device = torch.device(device) == STANDIN
        gen = super().__new__(cls, "cpu" if on_device else device)
        gen.on_device = on_device
        return gen

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return STANDIN if self.on_device else super().device


@dataclass(frozen=True)
class Violation:
    """What a real accelerator would refuse: ``kind`` (mixing, numpy, generator, float64), the
    operation, and the trainlab source line (``trainlab/<module>.py:<line>``) that asked for it."""

    kind: str
    op: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.op} at {self.where}"


@dataclass
class Record:
    """What one stand-in run did."""

    violations: Counter = field(default_factory=Counter)
    """:class:`Violation` -> how many times."""
    reads: Counter = field(default_factory=Counter)
    """(op, where) -> device-to-host reads."""
    copies: Counter = field(default_factory=Counter)
    """(op, where) -> host-to-device copies."""
    steps: int = 0
    """Optimizer steps taken (a stacked optimizer's step counts once)."""

    @property
    def syncs(self) -> int:
        """Reads and copies: every host-device synchronisation."""
        return sum(self.reads.values()) + sum(self.copies.values())

    def describe(self, top: int = 6) -> str:
        """Every violation, then the busiest sync sites, one per line."""
        lines = [f"{v} (x{n})" for v, n in sorted(self.violations.items(), key=lambda kv: str(kv[0]))]
        for name, counter in (("read", self.reads), ("copy", self.copies)):
            lines += [f"{name}: {op} at {where} (x{n})" for (op, where), n in counter.most_common(top)]
        return "\n".join(lines)


def caller() -> str:
    """``file:line`` of the innermost trainlab source line on the stack (else of the innermost caller outside torch)."""
    frame = sys._getframe(1)
    fallback = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(str(SOURCE)):
            return f"{Path(name).relative_to(SOURCE.parent).as_posix()}:{frame.f_lineno}"
        if fallback is None and name != _HERE and "/torch/" not in name:
            fallback = f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "?"


class _Notes:
    """The record both modes write to."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def violation(self, kind: str, op: str) -> None:
        self.record.violations[Violation(kind, op, caller())] += 1

    def read(self, op: str) -> None:
        self.record.reads[(op, caller())] += 1

    def copy(self, op: str) -> None:
        self.record.copies[(op, caller())] += 1


def _describe(t: torch.Tensor) -> str:
    """``a cpu float32 tensor of shape (3,)``: the other side of a mixing violation."""
    return f"a {t.device} {str(t.dtype).removeprefix('torch.')} tensor of shape {tuple(t.shape)}"


def _unwrap(args: tuple | list, device_in: list, host_in: list) -> list:
    """``args`` with stand-in tensors replaced by their CPU values (and one level of lists: ``cat``'s, ``index``'s)."""
    out = []
    for a in args:
        if isinstance(a, DeviceTensor):
            device_in.append(a)
            a = a.values
        elif isinstance(a, torch.Tensor):
            host_in.append(a)
        elif isinstance(a, (list, tuple)):
            a = type(a)(_unwrap(a, device_in, host_in))
        out.append(a)
    return out


class StandinDevice(TorchDispatchMode):
    """Run every ATen operation on the CPU values of stand-in device tensors, noting what a real
    accelerator would refuse (:class:`Violation`) and every synchronisation."""

    def __init__(self, notes: _Notes) -> None:
        super().__init__()
        self.notes = notes

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here runs under torch.compile: spare every operation dynamo's wrapper

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        device_in: list[DeviceTensor] = []
        host_in: list[torch.Tensor] = []
        uargs = _unwrap(args, device_in, host_in)
        ukwargs = dict(zip(kwargs, _unwrap(list(kwargs.values()), device_in, host_in))) if kwargs else {}
        target = ukwargs.get("device")
        if target is not None:
            on_device = target == STANDIN
            if on_device:
                ukwargs["device"] = _CPU
        elif func is aten.to.device:  # the one operation that takes its device positionally
            on_device = uargs[1] == STANDIN
            if on_device:
                uargs[1] = _CPU
        else:
            on_device = bool(device_in)
        shapes_only = target is not None and not on_device and target.type == "meta"  # nothing to move
        if (device_in or on_device) and (host_in or func in _NOTED) and not shapes_only:
            self._note(func, args, device_in, host_in, on_device)

        out = func(*uargs, **ukwargs)
        if not on_device:
            # .to("cpu") of a device tensor in inference mode returns the values themselves: copy, as there
            return out.clone() if any(out is d.values for d in device_in) else out
        if func is aten._local_scalar_dense.default:
            return out
        if isinstance(out, torch.Tensor):
            return self._wrap(out, func, device_in, host_in)
        if isinstance(out, (tuple, list)):
            return type(out)(self._wrap(x, func, device_in, host_in) if isinstance(x, torch.Tensor) else x for x in out)
        return out

    def _wrap(self, x: torch.Tensor, func: Any, device_in: list, host_in: list) -> torch.Tensor:
        for d in device_in:  # an in-place or out= operation returns its device argument
            if d.values is x:
                return d
        for h in host_in:
            if h is x:  # copy_ into a CPU tensor, or .to() of a CPU tensor to the device (copied, as there)
                if func.overloadpacket is aten.copy_:
                    return x
                x = x.clone()
                break
        if x.dtype == torch.float64:
            self.notes.violation("float64", func.__name__)
        if torch.is_inference_mode_enabled():
            # Wrappers are ordinary tensors even in inference mode: a view of an ordinary tensor
            # shares its version counter, which an inference tensor cannot.
            with torch.inference_mode(False):
                return DeviceTensor(x)
        return DeviceTensor(x)

    def _note(self, func: Any, args: tuple, device_in: list, host_in: list, on_device: bool) -> None:
        name = func.__name__
        big_host = [h for h in host_in if h.dim() > 0]
        if func.overloadpacket in _TRANSFERS:
            if not device_in:
                self.notes.copy(name)  # host -> device
            elif not on_device or (func.overloadpacket is not aten._to_copy and not isinstance(args[0], DeviceTensor)):
                self.notes.read(name)  # device -> host
            elif host_in:
                self.notes.copy(name)  # host -> an existing device tensor
        elif func is aten._local_scalar_dense.default:
            self.notes.read("item")
        elif func in _DATA_DEPENDENT:
            self.notes.read(name)
        elif func in _INDEXING:
            indices = [i for i in args[1] if isinstance(i, torch.Tensor)] if len(args) > 1 else []
            if any(isinstance(i, DeviceTensor) and i.dtype == torch.bool for i in indices):
                self.notes.read(f"{name} with a boolean mask")
            cpu_indices = [i for i in indices if not isinstance(i, DeviceTensor)]
            if cpu_indices:
                self.notes.copy(f"{name} with CPU indices")
            others = [h for h in big_host if not any(h is i for i in cpu_indices)]
            if others:
                self.notes.violation("mixing", f"{name} of a device tensor and {_describe(others[0])}")
        elif device_in and big_host and func not in _QUERIES:
            self.notes.violation("mixing", f"{name} of a device tensor and {_describe(big_host[0])}")


@contextmanager
def standin_device(monkeypatch: Any) -> Iterator[Record]:
    """Run the block on the stand-in accelerator; yield the :class:`Record` that fills as it runs.

    ``trainlab.execute`` resolves every device to it, ``torch.Generator`` makes
    :class:`DeviceGenerator` s, and a few torch functions are wrapped (by ``monkeypatch``, so
    undone afterwards) for what ATen never sees: ``.numpy()``/``.tolist()`` of device tensors,
    ``torch.tensor(..., device=)`` (which moves its data below ATen's dispatch), and the generator
    a random function draws from. Wrapping these few costs nothing elsewhere, where a
    ``TorchFunctionMode`` would stand between every call and torch (a quarter of the run's time).
    """
    record = Record()
    notes = _Notes(record)

    def count_step(*args: Any) -> None:
        record.steps += 1

    monkeypatch.setattr("trainlab.execute.resolve_device", lambda name="auto": STANDIN)
    monkeypatch.setattr(torch, "Generator", DeviceGenerator)
    _count_functional_steps(monkeypatch, count_step)
    _watch_host_reads(monkeypatch, notes)
    _watch_generators(monkeypatch, notes)
    for name in ("tensor", "as_tensor", "asarray"):
        monkeypatch.setattr(torch, name, _from_data(getattr(torch, name)))
    monkeypatch.setattr(torch.Tensor, "new_tensor", _new_tensor(torch.Tensor.new_tensor))
    with ExitStack() as stack:
        stack.callback(register_optimizer_step_post_hook(count_step).remove)
        stack.enter_context(StandinDevice(notes))
        yield record


def _from_data(fn: Any) -> Any:
    """``torch.tensor`` and its kin copy to the target device below ATen's dispatch (a plain meta
    tensor, without values, would come back): build on the CPU, then move."""

    def call(*args: Any, **kwargs: Any) -> Any:
        device = kwargs.get("device")
        if device is None or torch.device(device) != STANDIN:
            return fn(*args, **kwargs)
        requires_grad = kwargs.pop("requires_grad", False)
        out = fn(*args, **{**kwargs, "device": _CPU}).to(STANDIN)
        return out.requires_grad_() if requires_grad else out

    return call


def _new_tensor(fn: Any) -> Any:
    def call(self: torch.Tensor, data: Any, **kwargs: Any) -> Any:
        if isinstance(self, DeviceTensor) and kwargs.get("device") is None:
            return _from_data(fn)(self.values, data, **kwargs, device=STANDIN)
        return fn(self, data, **kwargs)

    return call


def _watch_host_reads(monkeypatch: Any, notes: _Notes) -> None:
    """``.numpy()`` of a device tensor is a violation (CUDA raises), ``.tolist()`` a read; both go on with the values."""
    for name in ("numpy", "__array__", "tolist"):
        fn = getattr(torch.Tensor, name)

        def call(self: torch.Tensor, *args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            if isinstance(self, DeviceTensor):
                if _name == "tolist":
                    notes.read("Tensor.tolist")
                else:
                    notes.violation("numpy", f"Tensor.{_name}")
                self = self.values
            return _fn(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, call)


# torch's random functions and methods that take a generator.
_RANDOM_FUNCTIONS = ("rand", "randn", "randint", "randperm", "normal", "multinomial", "bernoulli", "poisson",
                     "rand_like", "randn_like", "randint_like")
_RANDOM_METHODS = ("uniform_", "normal_", "random_", "exponential_", "bernoulli_", "bernoulli", "multinomial",
                   "cauchy_", "log_normal_", "geometric_")


def _watch_generators(monkeypatch: Any, notes: _Notes) -> None:
    """A generator on one device drawing numbers on another is a violation (CUDA raises)."""
    for owner, names in ((torch, _RANDOM_FUNCTIONS), (torch.Tensor, _RANDOM_METHODS)):
        for name in names:
            fn = getattr(owner, name)

            def call(*args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
                out = _fn(*args, **kwargs)
                gen = kwargs.get("generator")
                if gen is not None:
                    gen_on_device, numbers_on_device = bool(getattr(gen, "on_device", False)), isinstance(out, DeviceTensor)
                    if gen_on_device != numbers_on_device:
                        where = {True: "device", False: "CPU"}
                        notes.violation("generator", f"{_name} ({where[gen_on_device]} generator, "
                                                     f"{where[numbers_on_device]} numbers)")
                return out

            monkeypatch.setattr(owner, name, call)


def _count_functional_steps(monkeypatch: Any, count_step: Any) -> None:
    """Stacked trainers call torch's functional ``adam``/``sgd`` without an optimizer (no hook
    runs): count those calls too, in every loaded trainlab module that imported them."""
    from torch.optim.adam import adam
    from torch.optim.sgd import sgd

    for fn in (adam, sgd):
        def counting(*args: Any, _fn: Any = fn, **kwargs: Any) -> Any:
            count_step(None, args, kwargs)
            return _fn(*args, **kwargs)

        for name, module in list(sys.modules.items()):
            if name.startswith("trainlab.") and getattr(module, fn.__name__, None) is fn:
                monkeypatch.setattr(module, fn.__name__, counting)


def unfused_adam(monkeypatch: Any) -> None:
    """Run every Adam unfused, as on the stand-in: trainlab asks for torch's fused Adam on CPU and
    CUDA, which the stand-in (whose device is neither) cannot run. A CPU reference run made under
    this gives the stand-in's numbers exactly; the fused kernel rounds differently."""
    from torch.optim.adam import adam

    class UnfusedAdam(torch.optim.Adam):
        def __init__(self, *args: Any, fused: bool | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

    def unfused(*args: Any, fused: bool | None = None, **kwargs: Any) -> Any:
        return adam(*args, fused=False, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", UnfusedAdam)
    for name, module in list(sys.modules.items()):
        if name.startswith("trainlab.") and getattr(module, "adam", None) is adam:
            monkeypatch.setattr(module, "adam", unfused)


def unpacked_weights(monkeypatch: Any) -> None:
    """Sample the energy study's regressor through the module, as on the stand-in: on a CPU trainlab
    runs it on oneDNN-packed copies of its weights (:mod:`trainlab.nn.packed_mlp`), which the stand-in
    (not a CPU) does not get, and whose sums are added in another order."""
    from trainlab.nn import packed_mlp

    monkeypatch.setattr(packed_mlp, "onednn_available", lambda: False)


# The CPU runs a stand-in run is compared with, made in a second process (see start_cpu_runs).
_CPU_RUNS = """
import json, os, sys
from pathlib import Path
import pytest
from helpers import comparable_results, run_quick
from standin import unfused_adam, unpacked_weights
from trainlab.device import thread_limit
from trainlab.experiments.registry import all_experiments

folder, plan = Path(sys.argv[1]), json.loads(sys.argv[2])
all_experiments()  # every recipe imported, so that unfused_adam finds their optimizers
with thread_limit(1), pytest.MonkeyPatch.context() as patch:
    unfused_adam(patch)
    unpacked_weights(patch)
    for name, overrides in plan.items():
        try:
            result = comparable_results(run_quick(name, folder / "runs", **overrides))
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        (folder / f"{name}.part").write_text(json.dumps(result))
        os.replace(folder / f"{name}.part", folder / f"{name}.json")
"""


def start_cpu_runs(folder: Path, plan: dict[str, dict]) -> Any:
    """Start a process that runs each experiment of ``plan`` (name -> overrides) on the CPU, one
    thread, Adam unfused (:func:`unfused_adam`), the regressor unpacked (:func:`unpacked_weights`),
    writing ``folder/<name>.json`` as each ends."""
    import json
    import os
    import subprocess

    tests = Path(__file__).resolve().parent
    path = os.pathsep.join([str(tests.parent / "src"), str(tests), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", _CPU_RUNS, str(folder), json.dumps(plan)],
                            env={**os.environ, "PYTHONPATH": path}, stdout=subprocess.DEVNULL,
                            stderr=open(folder / "stderr.txt", "w"))


def wait_for_cpu_run(folder: Path, name: str, process: Any, timeout: float = 600.0) -> dict:
    """The comparable results of ``name``'s CPU run once :func:`start_cpu_runs`' process wrote them."""
    import json
    import time

    path, end = folder / f"{name}.json", time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None and not path.exists():
            raise AssertionError(f"the CPU runs stopped before {name}: "
                                 f"{(folder / 'stderr.txt').read_text()[-2000:]}")
        if time.monotonic() > end:
            raise AssertionError(f"no CPU run of {name} after {timeout:.0f} s")
        time.sleep(0.05)
    result = json.loads(path.read_text())
    if "error" in result:
        raise AssertionError(f"the CPU run of {name} failed: {result['error']}")
    return result
