"""HF checkpoints whose projections are stored unlike torch Linear layers:
GPT-2 / OpenAI GPT keep them as Conv1D weights ([in, out]) and fuse q, k, v
into one `c_attn` tensor. `FusedProjections` shows such a checkpoint as
plain Linear tensors (`attn.c_attn.query.weight`, ... shaped [out, in]), so
the family's layout names them like any other, and packs them back for
export."""

import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError


class FusedProjections:
    """conv1d: module names (suffixes, e.g. 'mlp.c_fc') stored as Conv1D;
    fused: {module suffix: part names} split along the output axis."""

    def __init__(self, conv1d=(), fused=None):
        self.conv1d = tuple(conv1d)
        self.fused = dict(fused or {})

    def module_of(self, name):
        """(module, kind) of a tensor name 'prefix.module.weight|bias', or None."""
        stem, _, kind = name.rpartition(".")
        for module in self.conv1d + tuple(self.fused):
            if stem == module or stem.endswith("." + module):
                return module, kind
        return None

    def wrap(self, reader):
        return _FusedView(reader, self)

    def pack(self, tensors):
        """{name: Linear-layout array} -> the file's layout: parts of a fused
        module concatenated (in part order), Conv1D weights transposed."""
        packed, groups = {}, {}
        for name, value in tensors.items():
            stem, _, kind = name.rpartition(".")
            module_stem, _, part = stem.rpartition(".")
            found = self.module_of(module_stem + "." + kind)
            if found is not None and part in self.fused.get(found[0], ()):
                groups.setdefault(module_stem + "." + kind, {})[part] = value
            else:
                packed[name] = value
        for name, parts in groups.items():
            module, _ = self.module_of(name)
            packed[name] = np.concatenate([parts[p] for p in self.fused[module]], axis=0)
        for name, value in packed.items():
            found = self.module_of(name)
            if found is not None and found[1] == "weight" and value.ndim == 2:
                packed[name] = np.ascontiguousarray(value.T)
        return packed


class _FusedView(CheckpointReader):
    def __init__(self, reader, spec):
        self._reader, self._spec = reader, spec
        self.path = reader.path
        self._sources = {}  # shown name -> (file name, part index or None, parts)
        for key in reader.keys():
            found = spec.module_of(key)
            parts = spec.fused.get(found[0]) if found else None
            if not parts:
                self._sources[key] = (key, None, 1)
                continue
            stem, _, kind = key.rpartition(".")
            for index, part in enumerate(parts):
                self._sources[f"{stem}.{part}.{kind}"] = (key, index, len(parts))

    def keys(self):
        return list(self._sources)

    def source_name(self, name):
        return self._sources[name][0] if name in self._sources else name

    def _source(self, name):
        if name not in self._sources:
            raise self.missing(name)
        return self._sources[name]

    def _is_conv1d_weight(self, key, shape):
        found = self._spec.module_of(key)
        return found is not None and found[1] == "weight" and len(shape) == 2

    def shape(self, name):
        key, index, count = self._source(name)
        shape = list(self._reader.shape(key))
        transpose = self._is_conv1d_weight(key, shape)
        if transpose:
            shape = shape[::-1]
        if index is not None:
            shape[0] = self._part_size(key, shape[0], count)
        return tuple(shape)

    def dtype(self, name):
        return self._reader.dtype(self._source(name)[0])

    def read(self, name):
        key, index, count = self._source(name)
        value = self._reader.read(key)
        if self._is_conv1d_weight(key, value.shape):
            value = value.T
        if index is not None:
            size = self._part_size(key, value.shape[0], count)
            value = value[index * size : (index + 1) * size]
        return np.ascontiguousarray(value)

    def _part_size(self, key, total, count):
        if total % count:
            raise CheckpointError(
                f"{self.path}: fused tensor {key!r} has {total} outputs, not a multiple of "
                f"its {count} parts"
            )
        return total // count

    def close(self):
        self._reader.close()
