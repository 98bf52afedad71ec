"""The interface every checkpoint reader implements.

A reader gives lazy, tensor-by-tensor access: `keys()` and `shape()` read only
metadata, `read(name)` loads one tensor as a numpy array. Loading a model never
holds a second full copy of the weights in memory.
"""

import math
from collections.abc import Mapping

import numpy as np

from nlp4keras.checkpoints.dtypes import describe, kind
from nlp4keras.checkpoints.errors import CheckpointError

# numpy cannot hold an array of 2**63 bytes or more, even one with no elements.
_ADDRESSABLE_BYTES = 1 << 63


def check_addressable(shape, itemsize, what):
    """Raise a CheckpointError (naming `what`) if numpy cannot make an array
    of this shape, counting zero-size dimensions as one (as numpy does)."""
    nonzero = math.prod(size or 1 for size in shape) * itemsize
    if nonzero >= _ADDRESSABLE_BYTES:
        raise CheckpointError(f"{what} has shape {tuple(shape)}, too large for any array")


class CheckpointReader:
    """Base class: subclasses implement `keys`, `shape` and `read`."""

    #: Path shown in error messages (a file, a folder or a prefix).
    path = "<checkpoint>"
    #: Names in the file that the reader could not translate (see HFNamingView).
    unmapped = ()

    def keys(self):
        """All tensor names, in the order the file lists them."""
        raise NotImplementedError

    def shape(self, name):
        """Shape of tensor `name` as a tuple, without reading its data."""
        raise NotImplementedError

    def read(self, name):
        """Tensor `name` as a numpy array (a fresh array, safe to modify)."""
        raise NotImplementedError

    def dtype(self, name):
        """numpy dtype of tensor `name` without reading its data, or None if
        the reader cannot tell before reading."""
        return None

    def close(self):
        """Release open files. Safe to call twice."""

    def source_name(self, name):
        """The name `name` has in the file itself (readers that rename override this)."""
        return name

    def __contains__(self, name):
        return name in set(self.keys())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def missing(self, name):
        """The error for a tensor that is not in this checkpoint."""
        return CheckpointError(f"tensor {name!r} not found in checkpoint {self.path}")


class DictReader(CheckpointReader):
    """A `{name: array}` dict used as a checkpoint (bert4keras accepted this too).

    Values may be numpy arrays, torch / JAX / TensorFlow tensors, Keras
    variables, numbers or nested lists of numbers. Keys must be strings. A
    value that holds no numbers (None, a string, a nested dict, an object or
    string array) is refused when the reader is made, with its key named.
    """

    path = "<dict>"

    def __init__(self, tensors):
        self._tensors = {}
        for key, value in tensors.items():
            if not isinstance(key, str):
                raise CheckpointError(
                    f"dict checkpoint: key {key!r} ({type(key).__name__}) is not a tensor "
                    "name; keys must be strings"
                )
            self._tensors[key] = _checked_value(key, value)

    def keys(self):
        return list(self._tensors)

    def shape(self, name):
        return tuple(int(size) for size in self._value(name).shape)

    def dtype(self, name):
        value = self._value(name)
        if _is_torch_tensor(value):
            return _torch_numpy_dtype(name, value)
        return _metadata_dtype(value)

    def read(self, name):
        value = self._value(name)
        if _is_torch_tensor(value):
            return _torch_to_numpy(name, value)
        try:
            array = np.array(value)
        except Exception as error:  # a foreign tensor type can fail in many ways
            raise CheckpointError(
                f"dict checkpoint: cannot turn the value of {name!r} into a numpy array: {error}"
            ) from error
        _check_numbers(name, array.dtype)
        return array

    def _value(self, name):
        if name not in self._tensors:
            raise self.missing(name)
        return self._tensors[name]


def _checked_value(key, value):
    """`value` if it can be a tensor (lists become arrays), else a CheckpointError."""
    what = f"dict checkpoint: the value of {key!r}"
    if value is None:
        raise CheckpointError(f"{what} is None; expected an array")
    if isinstance(value, (str, bytes, bytearray, Mapping, set)):
        raise CheckpointError(f"{what} is of type {type(value).__name__}, not an array")
    if _is_torch_tensor(value):
        _torch_numpy_dtype(key, value)
        return value
    if isinstance(value, (list, tuple, int, float, complex, np.generic)):
        try:
            value = np.asarray(value)
        except ValueError as error:  # ragged nested lists
            raise CheckpointError(f"{what} is not a rectangular array: {error}") from None
        except (OverflowError, TypeError) as error:
            raise CheckpointError(f"{what} is not an array of numbers: {error}") from None
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise CheckpointError(f"{what} is of type {type(value).__name__}, not an array")
    dtype = _metadata_dtype(value)
    if dtype is not None:
        _check_numbers(key, dtype)
    return value


def _check_numbers(key, dtype):
    if kind(dtype) is None:
        raise CheckpointError(
            f"dict checkpoint: the value of {key!r} holds {describe(dtype)} items, not numbers"
        )


def _metadata_dtype(value):
    """numpy dtype of an array-like's `dtype` attribute, or None if unknown."""
    dtype = getattr(value, "dtype", None)
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # a TensorFlow DType
    if dtype is None:  # np.dtype(None) would be float64
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        return None


def _is_torch_tensor(value):
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _torch_numpy_dtype(key, tensor):
    from nlp4keras.checkpoints.torch_pickle import numpy_dtype_of

    dtype = numpy_dtype_of(str(tensor.dtype).removeprefix("torch."))
    if dtype is None:
        raise CheckpointError(
            f"dict checkpoint: the value of {key!r} is a torch tensor of unsupported "
            f"dtype {tensor.dtype}"
        )
    return dtype


def _torch_to_numpy(key, tensor):
    """A fresh numpy copy of a torch tensor; bfloat16, float8 and wide
    unsigned types, which `Tensor.numpy()` refuses, go through their bits."""
    import torch

    dtype = _torch_numpy_dtype(key, tensor)
    try:
        tensor = tensor.detach().cpu().contiguous()
        if dtype.kind == "V" or dtype.kind == "u" and dtype.itemsize > 1:
            bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
            return tensor.view(bits[dtype.itemsize]).numpy().view(dtype).copy()
        return tensor.numpy().copy()
    except (RuntimeError, TypeError, NotImplementedError) as error:  # e.g. a meta tensor
        raise CheckpointError(
            f"dict checkpoint: cannot copy the torch tensor {key!r} to numpy: {error}"
        ) from error
