"""Checkpoint readers and writers that need neither TensorFlow nor PyTorch."""

from nlp4keras.checkpoints.base import CheckpointReader, DictReader
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.gguf_reader import GGUFCheckpointReader
from nlp4keras.checkpoints.loading import LoadReport
from nlp4keras.checkpoints.safetensors_io import SafetensorsReader, ShardedReader
from nlp4keras.checkpoints.sources import open_checkpoint
from nlp4keras.checkpoints.tf_bundle import TFCheckpointReader, write_tf_checkpoint
from nlp4keras.checkpoints.torch_bin import TorchBinReader

__all__ = [
    "CheckpointError",
    "CheckpointReader",
    "DictReader",
    "GGUFCheckpointReader",
    "LoadReport",
    "SafetensorsReader",
    "ShardedReader",
    "TFCheckpointReader",
    "TorchBinReader",
    "open_checkpoint",
    "write_tf_checkpoint",
]
