"""The restricted unpickler refuses code-running pickles and still loads Dopamine's numpy pickles."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from anew.errors import AnewError
from anew.reincarnation.formats.safe_pickle import UnsafePickleError, optax_state_stub, safe_load, safe_loads


class _RunsShellCommand:
    """Unpickling this with plain pickle runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_command_pickle_is_refused_and_the_command_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"online_params": np.zeros(3), "evil": _RunsShellCommand(marker)}, protocol=4)
    with pytest.raises(UnsafePickleError) as refused:
        safe_loads(payload, "ckpt.1")
    message = str(refused.value)
    assert f"{os.system.__module__}.system" in message and "ckpt.1" in message
    assert not marker.exists()

    # The payload is live: plain pickle in a child process does create the marker.
    path = tmp_path / "ckpt.1"
    path.write_bytes(payload)
    subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"],
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafePickleError):
        safe_load(path)
    assert not marker.exists()


class _Evaluates:
    def __reduce__(self):
        return (eval, ("1 + 1",))


class _GetsAttribute:
    def __reduce__(self):
        return (getattr, ("text", "upper"))


class _Subclassed(np.ndarray):
    pass


@pytest.mark.parametrize(
    "payload",
    [
        _Evaluates(),
        _GetsAttribute(),
        collections.Counter({"a": 1}),
        np.array([1, "a"], dtype=object),
        np.arange(3).view(_Subclassed),
    ],
    ids=["eval", "getattr", "counter", "object-array", "ndarray-subclass"],
)
def test_other_globals_are_refused(payload):
    for protocol in (2, 4, 5):
        with pytest.raises(UnsafePickleError):
            safe_loads(pickle.dumps(payload, protocol=protocol))


def test_numpy_and_container_pickles_load():
    tree = {
        "params": {
            "kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            "bias": np.ones(4, np.float64),
        },
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "structured": np.zeros(2, dtype=[("data", "u1", (3,)), ("shape", "<i4", (3,))]),
        "ends": {np.int64(3), np.int64(826)},
        "scalars": (np.float32(1.5), np.int32(-2), np.bool_(True), 7, 2.5, "text", b"raw", None),
        "ordered": collections.OrderedDict(a=[1, 2], b=frozenset({1})),
        "empty": np.zeros((0, 4), np.uint8),
    }
    for protocol in (2, 3, 4, 5):
        loaded = safe_loads(pickle.dumps(tree, protocol=protocol))
        assert loaded["params"]["kernel"].dtype == np.float32
        np.testing.assert_array_equal(loaded["params"]["kernel"], tree["params"]["kernel"])
        np.testing.assert_array_equal(loaded["fortran"], tree["fortran"])
        np.testing.assert_array_equal(loaded["structured"], tree["structured"])
        assert loaded["ends"] == {3, 826} and all(type(i) is np.int64 for i in loaded["ends"])
        assert loaded["scalars"] == tree["scalars"] and type(loaded["scalars"][0]) is np.float32
        assert loaded["ordered"] == tree["ordered"] and loaded["empty"].shape == (0, 4)


def _fake_module(monkeypatch, dotted: str, **attributes) -> None:
    parts = dotted.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if name not in sys.modules or not getattr(sys.modules[name], "_anew_fake", False):
            module = types.ModuleType(name)
            module._anew_fake = True
            monkeypatch.setitem(sys.modules, name, module)
    for key, value in attributes.items():
        value.__module__, value.__qualname__ = dotted, key
        setattr(sys.modules[dotted], key, value)


def test_jax_flax_optax_wrappers_become_numpy_dicts_and_tuples(monkeypatch):
    """Builds pickles that reference jax/flax/optax exactly as Dopamine's do, with stand-in modules."""

    class ArrayImpl:  # pickles like jax.Array: (_reconstruct_array, (fun, args, arr_state, aval_state))
        def __init__(self, value):
            self.value = value

        def __reduce__(self):
            fun, args, state = self.value.__reduce__()
            return (_reconstruct_array, (fun, args, state, {"weak_type": False}))

    def _reconstruct_array(fun, args, arr_state, aval_state):
        raise AssertionError("the real function must never be called")

    class FrozenDict(dict):
        def __reduce__(self):
            return (FrozenDict, (dict(self),))

    ScaleByAdamState = collections.namedtuple("ScaleByAdamState", "count mu nu")
    EmptyState = collections.namedtuple("EmptyState", "")
    InjectHyperparamsState = collections.namedtuple("InjectHyperparamsState", "count hyperparams inner_state")
    _fake_module(monkeypatch, "jax._src.array", _reconstruct_array=_reconstruct_array)
    _fake_module(monkeypatch, "flax.core.frozen_dict", FrozenDict=FrozenDict)
    _fake_module(monkeypatch, "optax._src.transform", ScaleByAdamState=ScaleByAdamState)
    _fake_module(monkeypatch, "optax._src.base", EmptyState=EmptyState)
    _fake_module(monkeypatch, "optax._src.schedule", InjectHyperparamsState=InjectHyperparamsState)

    kernel = np.random.default_rng(0).normal(size=(8, 8, 4, 32)).astype(np.float32)
    bundle = {
        "online_params": FrozenDict(params=FrozenDict(Conv_0=FrozenDict(kernel=ArrayImpl(kernel)))),
        "optimizer_state": (
            ScaleByAdamState(ArrayImpl(np.array(172, np.int32)), {"m": 1}, {"v": 2}),
            EmptyState(),
            InjectHyperparamsState(1, {"lr": 0.1}, EmptyState()),
        ),
    }
    loaded = safe_loads(pickle.dumps(bundle, protocol=4))
    params = loaded["online_params"]
    assert type(params) is dict and type(params["params"]["Conv_0"]) is dict
    assert type(params["params"]["Conv_0"]["kernel"]) is np.ndarray
    np.testing.assert_array_equal(params["params"]["Conv_0"]["kernel"], kernel)
    adam, empty, injected = loaded["optimizer_state"]
    assert type(adam).__name__ == "ScaleByAdamState" and int(adam.count) == 172 and adam.mu == {"m": 1}
    assert type(empty) is optax_state_stub("EmptyState") and tuple(empty) == ()
    assert type(injected).__name__ == "InjectHyperparamsState" and injected[1] == {"lr": 0.1}


def test_truncated_and_foreign_pickles_get_a_clear_error(tmp_path):
    data = pickle.dumps({"a": np.arange(100)}, protocol=4)
    for broken in (data[: len(data) // 2], b"not a pickle at all", b""):
        with pytest.raises(AnewError, match="truncated or corrupt") as caught:
            safe_loads(broken, "ckpt.9")
        assert not isinstance(caught.value, UnsafePickleError)
    with pytest.raises(AnewError, match="does not exist"):
        safe_load(tmp_path / "missing")
