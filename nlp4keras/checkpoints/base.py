"""The interface every checkpoint reader implements.

A reader gives lazy, tensor-by-tensor access: `keys()` and `shape()` read only
metadata, `read(name)` loads one tensor as a numpy array. Loading a model never
holds a second full copy of the weights in memory.
"""

from nlp4keras.checkpoints.errors import CheckpointError


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
    """A `{name: array}` dict used as a checkpoint (bert4keras accepted this too)."""

    path = "<dict>"

    def __init__(self, tensors):
        import numpy as np

        self._tensors = tensors
        self._np = np

    def keys(self):
        return list(self._tensors)

    def shape(self, name):
        if name not in self._tensors:
            raise self.missing(name)
        return tuple(self._np.shape(self._tensors[name]))

    def read(self, name):
        if name not in self._tensors:
            raise self.missing(name)
        value = self._tensors[name]
        if hasattr(value, "detach"):  # a torch tensor from a state_dict
            value = value.detach().cpu().numpy()
        return self._np.array(value)
