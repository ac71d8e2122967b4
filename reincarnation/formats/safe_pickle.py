"""A restricted unpickler for the pickles Dopamine writes (``ckpt.N`` bundles, ``episode_end_indices``).

A pickle is a program: loading one with :mod:`pickle` can import and call anything, e.g. ``os.system``.
Dopamine's files only ever need numpy arrays, numpy scalars and dtypes, builtin containers, and a few
JAX/flax/optax wrappers around numpy data. This unpickler builds exactly those and refuses every other
global with an :class:`UnsafePickleError` that names it, *before* anything is called:

* ``numpy(._core|.core).multiarray._reconstruct`` / ``scalar``, ``numpy.ndarray``, ``numpy.dtype``
  (object dtypes are refused, so no array can smuggle arbitrary objects);
* ``jax._src.array._reconstruct_array`` -> the plain numpy array it wraps (no JAX needed);
* ``flax.core.frozen_dict.FrozenDict`` -> ``dict``;
* optax ``...State`` namedtuples -> tuple stubs with the same name (and field names where known);
* ``builtins`` set/frozenset/list/dict/tuple/bytes/bytearray/complex, ``collections.OrderedDict``,
  and ``_codecs.encode`` (how protocol-2 pickles spell ``bytes``).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from anew.errors import AnewError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[no-redef]
    from numpy.core.multiarray import scalar as _np_scalar  # type: ignore[no-redef]


class UnsafePickleError(AnewError):
    """The pickle asks for a global that a Dopamine file never needs; nothing was executed."""


def _refuse_object_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.hasobject:
        raise UnsafePickleError(
            f"refusing to build {what} with object dtype {dtype!r}: Dopamine files hold only plain "
            "numeric arrays; convert the file to plain numpy in a trusted environment"
        )


def _safe_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    _refuse_object_dtype(dtype, "a dtype")
    return dtype


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes):
        raise UnsafePickleError(
            "numpy scalar in the pickle is not (dtype, bytes); the file is not a numpy pickle"
        )
    _refuse_object_dtype(dtype, "a numpy scalar")
    return _np_scalar(dtype, data)


def _safe_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refusing to reconstruct an array of type {subtype!r}; only numpy.ndarray")
    return _np_reconstruct(np.ndarray, shape, dtype_code)


def _safe_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    # Protocol-5 pickles of arrays; numpy's own helper, restricted to non-object dtypes.
    if not isinstance(dtype, np.dtype):
        raise UnsafePickleError("numpy frombuffer in the pickle has no dtype; the file is not a numpy pickle")
    _refuse_object_dtype(dtype, "an array")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).copy()


def _jax_reconstruct_array(fun: Any, args: Any, arr_state: Any, aval_state: Any) -> np.ndarray:
    """``jax._src.array._reconstruct_array`` without JAX: ``fun(*args).__setstate__(arr_state)``."""
    if fun is not _safe_reconstruct or not isinstance(args, tuple) or not isinstance(aval_state, dict):
        raise UnsafePickleError("jax array in the pickle is not wrapped around a numpy array; refusing it")
    array = fun(*args)
    array.__setstate__(arr_state)
    _refuse_object_dtype(array.dtype, "a jax array")
    return array


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only allowed for protocol-2 bytes (latin1 text)")
    return codecs.encode(text, encoding)


class FrozenDictStub(dict):
    """Stands in for ``flax.core.FrozenDict``; turned into a plain ``dict`` after loading."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state.get("_dict", state))


# Field names of the optax states Dopamine's optimizers produce (optax 0.1-0.2); others get a bare tuple.
_OPTAX_FIELDS = {
    "EmptyState": (),
    "ScaleByAdamState": ("count", "mu", "nu"),
    "ScaleByRmsState": ("nu",),
    "ScaleByRStdDevState": ("mu", "nu"),
    "ScaleByScheduleState": ("count",),
    "TraceState": ("trace",),
    "ScaleByAmsgradState": ("count", "mu", "nu", "nu_max"),
    "ScaleByBeliefState": ("count", "mu", "nu"),
}
_optax_stub_cache: dict[str, type] = {}


def optax_state_stub(name: str) -> type:
    """A tuple subclass called ``name`` standing in for an optax namedtuple state."""
    if name not in _optax_stub_cache:
        fields = _OPTAX_FIELDS.get(name)
        if fields is not None:
            stub = collections.namedtuple(name, fields)  # type: ignore[misc]
        else:
            stub = type(name, (tuple,), {"__new__": lambda cls, *args: tuple.__new__(cls, args)})
        stub.__module__ = __name__
        stub.__doc__ = f"Stub for optax's {name} (loaded without optax)."
        _optax_stub_cache[name] = stub
    return _optax_stub_cache[name]


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "tuple"): tuple,
    ("builtins", "bytes"): bytes,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
    ("jax._src.array", "_reconstruct_array"): _jax_reconstruct_array,
    ("flax.core.frozen_dict", "FrozenDict"): FrozenDictStub,
}
for _numpy_module in ("numpy._core.multiarray", "numpy.core.multiarray"):
    _ALLOWED[(_numpy_module, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_numpy_module, "scalar")] = _safe_scalar
for _numpy_module in ("numpy._core.numeric", "numpy.core.numeric"):
    _ALLOWED[(_numpy_module, "_frombuffer")] = _safe_frombuffer
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = _safe_dtype


def allowed_global(module: str, name: str) -> Callable[..., Any] | None:
    """What the restricted unpickler builds for ``module.name``, or None if it is refused."""
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if (module == "optax" or module.startswith("optax.")) and name.endswith("State") and name.isidentifier():
        return optax_state_stub(name)
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only knows the globals listed in this module."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles name Python 2 modules (``__builtin__.set``); map them as pickle itself does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = allowed_global(module, name)
        if found is None:
            raise UnsafePickleError(
                f"refusing to unpickle {self.source}: it asks for the global '{module}.{name}', which a "
                "Dopamine checkpoint or replay file never contains (unpickling it could run code). Only load "
                "files written by Dopamine; nothing from this file was executed"
            )
        return found


def _plain(obj: Any) -> Any:
    """Replace FrozenDict stubs by plain dicts, recursively through containers."""
    if isinstance(obj, dict):
        items = {key: _plain(value) for key, value in obj.items()}
        return items if type(obj) in (dict, FrozenDictStub) else type(obj)(items)
    if isinstance(obj, list):
        return [_plain(value) for value in obj]
    if isinstance(obj, tuple):
        values = [_plain(value) for value in obj]
        return tuple(values) if type(obj) is tuple else type(obj)(*values)  # optax stubs are positional
    return obj


def safe_load(file: str | os.PathLike | BinaryIO, source: str | None = None) -> Any:
    """Unpickle a Dopamine file (path or binary file object) with the restricted unpickler.

    Raises :class:`UnsafePickleError` for any global outside the allow-list and :class:`AnewError`
    for a truncated or corrupt pickle.
    """
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        try:
            with open(path, "rb") as handle:
                return safe_load(handle, source or str(path))
        except FileNotFoundError:
            raise AnewError(
                f"{path} does not exist: point anew at a Dopamine checkpoint or replay file"
            ) from None
    source = source or getattr(file, "name", "<pickle>")
    try:
        return _plain(RestrictedUnpickler(file, str(source)).load())
    except AnewError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        struct.error,
        OverflowError,
        UnicodeDecodeError,
    ) as error:
        raise AnewError(
            f"{source} is not a readable pickle (truncated or corrupt: {type(error).__name__}: {error}); "
            "copy the file again from where Dopamine wrote it"
        ) from None


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """:func:`safe_load` for a bytes object."""
    return safe_load(io.BytesIO(data), source)
