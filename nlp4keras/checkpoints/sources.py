"""Finding and opening a checkpoint from whatever the user passes."""

import os

from nlp4keras.checkpoints.base import CheckpointReader, DictReader
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.safetensors_io import SafetensorsReader, ShardedReader
from nlp4keras.checkpoints.tf_bundle import TFCheckpointReader
from nlp4keras.checkpoints.torch_bin import TorchBinReader

# File names looked for inside a folder, in order of preference.
_FOLDER_CANDIDATES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def _open_index(path):
    shard_reader = SafetensorsReader if ".safetensors" in os.path.basename(path) else TorchBinReader
    return ShardedReader(path, shard_reader)


def _open_gguf(path):
    # Imported here: the gguf package is optional (pip install nlp4keras[gguf]).
    from nlp4keras.checkpoints.gguf_reader import GGUFCheckpointReader

    return GGUFCheckpointReader(path)


def _open_file(path):
    name = os.path.basename(path)
    if name.endswith(".index.json"):
        return _open_index(path)
    if name.endswith(".safetensors"):
        return SafetensorsReader(path)
    if name.endswith((".bin", ".pt", ".pth")):
        return TorchBinReader(path)
    if name.endswith(".gguf"):
        return _open_gguf(path)
    if name.endswith(".index") or ".data-" in name:
        return TFCheckpointReader(path)
    raise CheckpointError(
        f"cannot tell the checkpoint format of {path}: expected .safetensors, "
        ".bin/.pt/.pth, .gguf, a *.index.json shard index or a TF checkpoint (.index)"
    )


def _open_folder(path):
    for candidate in _FOLDER_CANDIDATES:
        if os.path.isfile(os.path.join(path, candidate)):
            return _open_file(os.path.join(path, candidate))
    try:
        entries = os.listdir(path)
    except OSError as error:
        raise CheckpointError(f"cannot list checkpoint folder {path}: {error}") from None
    if any(entry.endswith(".index") for entry in entries) or "checkpoint" in entries:
        return TFCheckpointReader(path)
    ggufs = sorted(entry for entry in entries if entry.endswith(".gguf"))
    if len(ggufs) == 1:
        return _open_gguf(os.path.join(path, ggufs[0]))
    if ggufs:
        raise CheckpointError(
            f"folder {path} holds {len(ggufs)} GGUF files ({', '.join(ggufs)}): pass the path "
            "of the one to load"
        )
    raise CheckpointError(
        f"no checkpoint found in folder {path}: looked for {', '.join(_FOLDER_CANDIDATES)}, "
        "TF checkpoint files (*.index) and a .gguf file"
    )


def gguf_file(path):
    """The GGUF file `path` stands for: a `.gguf` path, or a folder with neither
    config.json nor another checkpoint whose files include exactly one `.gguf`
    (None otherwise)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    path = os.fspath(path)
    if isinstance(path, str) and path.endswith(".gguf"):
        return path
    if not isinstance(path, str) or not os.path.isdir(path):
        return None
    try:
        entries = os.listdir(path)
    except OSError:
        return None
    others = ("config.json", "bert_config.json", "checkpoint") + _FOLDER_CANDIDATES
    if any(entry in others or entry.endswith(".index") for entry in entries):
        return None
    ggufs = [entry for entry in entries if entry.endswith(".gguf")]
    return os.path.join(path, ggufs[0]) if len(ggufs) == 1 else None


def open_checkpoint(checkpoint):
    """A CheckpointReader for a path (file, folder or TF prefix), a dict of
    arrays, or an already open reader (returned as is)."""
    if isinstance(checkpoint, CheckpointReader):
        return checkpoint
    if isinstance(checkpoint, dict):
        return DictReader(checkpoint)
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            "checkpoint must be a path, a dict of arrays or a CheckpointReader, "
            f"got {type(checkpoint).__name__}"
        )
    path = os.fspath(checkpoint)
    if not isinstance(path, str):
        raise TypeError(f"checkpoint path must be text, got {type(path).__name__} {path!r:.80}")
    if not path:
        raise CheckpointError("checkpoint path is empty")
    if "\0" in path:
        raise CheckpointError(f"checkpoint path {path!r} contains a NUL character")
    if os.path.isdir(path):
        return _open_folder(path)
    if os.path.isfile(path):
        return _open_file(path)
    if os.path.isfile(path + ".index"):
        return TFCheckpointReader(path)
    raise CheckpointError(f"checkpoint not found: {path}")
