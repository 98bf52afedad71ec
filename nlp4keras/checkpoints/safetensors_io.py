"""Reading safetensors files (single or sharded) tensor by tensor."""

import json
import os

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError


class SafetensorsReader(CheckpointReader):
    """One `.safetensors` file, opened lazily with safetensors' numpy API."""

    def __init__(self, path):
        from safetensors import safe_open

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise CheckpointError(f"safetensors file not found: {self.path}")
        try:
            self._file = safe_open(self.path, framework="np")
            self._keys = list(self._file.keys())
        except Exception as error:  # SafetensorError is not importable portably
            raise CheckpointError(
                f"cannot read safetensors file {self.path} (corrupt or truncated?): {error}"
            ) from error

    def keys(self):
        return list(self._keys)

    def shape(self, name):
        self._check(name)
        return tuple(self._file.get_slice(name).get_shape())

    def read(self, name):
        self._check(name)
        try:
            return self._file.get_tensor(name)  # a fresh buffer per call
        except Exception as error:
            raise CheckpointError(
                f"cannot read tensor {name!r} from {self.path}: {error}"
            ) from error

    def _check(self, name):
        if name not in self._keys:
            raise self.missing(name)

    def close(self):
        self._file = None


class ShardedReader(CheckpointReader):
    """Shards listed by an HF index file (`*.index.json` with a `weight_map`),
    each opened on first use with `open_shard(path)`."""

    def __init__(self, index_path, open_shard):
        self.path = os.fspath(index_path)
        try:
            with open(self.path, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"cannot read shard index {self.path}: expected JSON with a 'weight_map' ({error})"
            ) from error
        folder = os.path.dirname(self.path)
        self._shard_of = {name: os.path.join(folder, shard) for name, shard in weight_map.items()}
        self._open_shard = open_shard
        self._shards = {}

    def _reader(self, name):
        if name not in self._shard_of:
            raise self.missing(name)
        shard = self._shard_of[name]
        if shard not in self._shards:
            if not os.path.isfile(shard):
                raise CheckpointError(f"shard {shard} listed in {self.path} does not exist")
            self._shards[shard] = self._open_shard(shard)
        return self._shards[shard]

    def keys(self):
        return list(self._shard_of)

    def shape(self, name):
        return self._reader(name).shape(name)

    def read(self, name):
        return self._reader(name).read(name)

    def close(self):
        for reader in self._shards.values():
            reader.close()
        self._shards = {}
