"""Reading GGUF files (llama.cpp's format) tensor by tensor, under HF Llama names.

The file is parsed by the `gguf` package (llama.cpp's own Python reader,
imported when a reader is made) and each tensor is dequantised to float32 by
`gguf.quants.dequantize` when it is read. The reader presents the tensors as an
HF `LlamaForCausalLM` checkpoint would hold them: HF names, torch Linear layout
`[out, in]`, and the query/key rows in HF's order (llama.cpp's converter
interleaves the two halves of each head's rotary dimensions; `read` undoes it
the way transformers does when it loads a GGUF file). `hf_config()` gives the
matching HF config dict from the file's metadata.

Only `general.architecture == "llama"` is supported for now.
"""

import os
import re

import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.gguf_header import check_gguf_header

SUPPORTED_ARCHITECTURES = ("llama",)

# GGUF tensor name (without .weight/.bias) -> HF name, `{i}` the layer index.
_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_LAYER_PATTERN = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")
_GLOBAL_PATTERN = re.compile(r"(\w+)\.(weight|bias)")

# GGUF value types (the spec's numbering) the metadata decoding needs.
_STRING, _ARRAY = 8, 9
# The tokenizer's big arrays, left out of a checkpoint reader's `metadata`.
_VOCAB_KEYS = frozenset(
    f"tokenizer.ggml.{key}" for key in ("tokens", "merges", "token_type", "scores")
)


def import_gguf():
    """The `gguf` package, or an ImportError that says how to install it."""
    try:
        import gguf
        import gguf.quants
    except ImportError as error:
        raise ImportError(
            "reading GGUF files needs the gguf package (llama.cpp's reader): "
            "pip install gguf, or pip install nlp4keras[gguf]"
        ) from error
    return gguf


def open_gguf(path):
    """A `gguf.GGUFReader` for `path`; a missing, truncated or non-GGUF file
    raises CheckpointError naming the file."""
    gguf = import_gguf()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"GGUF file not found: {path}")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as error:
        raise CheckpointError(f"cannot open GGUF file {path}: {error}") from None
    if magic != b"GGUF":
        raise CheckpointError(
            f"{path} is not a GGUF file: it starts with {magic!r}, not the magic b'GGUF'"
        )
    check_gguf_header(path)  # the gguf reader trusts declared counts (a huge one hangs it)
    try:
        reader = gguf.GGUFReader(path)
    except Exception as error:  # the gguf parser raises numpy, struct, key and value errors
        raise CheckpointError(
            f"corrupt or truncated GGUF file {path} ({size} bytes): the gguf reader failed with "
            f"{type(error).__name__}: {error}"
        ) from None
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > size:
            raise CheckpointError(
                f"GGUF file {path} is truncated: tensor {tensor.name!r} ends at byte {end}, "
                f"past the end of the {size}-byte file"
            )
    return reader


def metadata_value(field):
    """The Python value of one `gguf.ReaderField` (str, int, float, bool or a
    list of these), read from its parts so that old `gguf` versions work too."""
    types = list(field.types)
    if not types:
        return None
    parts = field.parts

    def scalar(kind, part):
        if kind == _STRING:
            return bytes(part).decode("utf-8", errors="replace")
        value = part[0]
        return value.item() if hasattr(value, "item") else value

    if types[0] == _ARRAY:
        kind = types[-1]
        return [scalar(kind, parts[index]) for index in field.data]
    return scalar(types[0], parts[field.data[0]])


class GGUFCheckpointReader(CheckpointReader):
    """A llama-architecture `.gguf` file as a lazy, float32 checkpoint under HF
    Llama names (`model.layers.0.self_attn.q_proj.weight`, ...).

    `read(name)` dequantises one tensor (any type `gguf.quants.dequantize`
    knows: F32, F16, BF16, Q4_0, Q4_1, Q8_0, K-quants, ...) into a fresh
    float32 array in HF's shape. `source_name(name)` is the GGUF name
    (`blk.0.attn_q.weight`), `ggml_type(name)` its stored type ('Q4_1'). GGUF
    tensors with no HF counterpart (e.g. `rope_freqs.weight`) are listed in
    `unmapped`. `lm_head.weight` is present only when the file has its own
    `output.weight`; otherwise the embeddings are tied (see `hf_config()`).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        gguf = import_gguf()
        self._dequantize = gguf.quants.dequantize
        self._reader = open_gguf(self.path)
        try:
            self._metadata = {
                key: metadata_value(field)
                for key, field in self._reader.fields.items()
                if key not in _VOCAB_KEYS
            }
        except (IndexError, TypeError, ValueError) as error:  # a field with no value
            self.close()
            raise CheckpointError(
                f"corrupt GGUF file {self.path}: unreadable metadata ({error})"
            ) from None
        architecture = self._metadata.get("general.architecture")
        if architecture not in SUPPORTED_ARCHITECTURES:
            self.close()
            supported = ", ".join(repr(a) for a in SUPPORTED_ARCHITECTURES)
            raise CheckpointError(
                f"GGUF file {self.path} holds architecture {architecture!r}, which nlp4keras "
                f"cannot read yet; supported: {supported}"
            )
        self.architecture = architecture
        self._tensors, unmapped = {}, []
        for tensor in self._reader.tensors:
            hf_name = _hf_name(tensor.name)
            if hf_name is None or hf_name in self._tensors:
                unmapped.append(tensor.name)
            else:
                self._tensors[hf_name] = tensor
        self.unmapped = tuple(unmapped)
        # GGUF lists dimensions fastest-first; numpy (and HF) slowest-first.
        self._shapes = {
            name: tuple(int(size) for size in reversed(tensor.shape.tolist()))
            for name, tensor in self._tensors.items()
        }
        self._sources = {name: tensor.name for name, tensor in self._tensors.items()}
        self._types = {name: tensor.tensor_type.name for name, tensor in self._tensors.items()}
        tokens = self._reader.fields.get("tokenizer.ggml.tokens")
        self._n_tokens = None if tokens is None else len(tokens.data)
        try:
            self._heads = self._head_counts()
        except CheckpointError:
            self.close()
            raise

    # -- metadata --------------------------------------------------------------

    @property
    def metadata(self):
        """The file's metadata as a `{key: value}` dict (a copy), without the
        tokenizer's vocabulary arrays (see `nlp4keras.tokenizers.BpeTokenizer`)."""
        return dict(self._metadata)

    def _arch_value(self, key, default=None, required=True):
        full = f"{self.architecture}.{key}"
        value = self._metadata.get(full, default)
        if value is None and required:
            raise CheckpointError(f"GGUF file {self.path} has no {full!r} metadata")
        if isinstance(value, list):  # a per-layer list (not in Llama files)
            raise CheckpointError(
                f"GGUF file {self.path}: {full!r} is a per-layer list {value[:8]!r}; "
                "nlp4keras reads one value for all layers"
            )
        return value

    def _head_counts(self):
        heads = self._arch_value("attention.head_count")
        kv_heads = self._arch_value("attention.head_count_kv", default=heads)
        for name, count in (("head_count", heads), ("head_count_kv", kv_heads)):
            if type(count) is not int or count <= 0:
                raise CheckpointError(
                    f"GGUF file {self.path}: attention.{name} is {count!r}, not a positive int"
                )
        return heads, kv_heads

    def _size(self, key, size):
        if type(size) is not int or size <= 0:
            raise CheckpointError(
                f"GGUF file {self.path}: {key} from its metadata is {size!r}, not a positive int"
            )
        return size

    def _float(self, key, default=None):
        """A float32 metadata value as the shortest decimal that rounds to it
        (GGUF stores 1e-5 as float32, which widens to 9.999999747378752e-06)."""
        value = self._arch_value(key, default=default)
        if type(value) not in (int, float) or not np.isfinite(value):
            raise CheckpointError(f"GGUF file {self.path}: {key} is {value!r}, not a number")
        return float(str(np.float32(value)))

    def hf_config(self):
        """The HF `LlamaConfig` dict that fits these tensors (a fresh dict)."""
        heads, kv_heads = self._heads
        hidden = self._size("embedding_length", self._arch_value("embedding_length"))
        head_dim = self._arch_value("attention.key_length", default=hidden // heads)
        rotary = self._arch_value("rope.dimension_count", required=False)
        if rotary is not None and rotary != head_dim:
            raise CheckpointError(
                f"GGUF file {self.path}: rope.dimension_count {rotary} differs from the head "
                f"size {head_dim}; partial rotary embeddings are not a Llama model"
            )
        scaling = self._arch_value("rope.scaling.type", required=False)
        if scaling not in (None, "none"):
            raise CheckpointError(
                f"GGUF file {self.path}: rope scaling {scaling!r} is not supported yet"
            )
        vocab_size = self._arch_value("vocab_size", required=False)
        if vocab_size is None:  # as transformers does: the tokenizer's, else the embedding's
            vocab_size = self._n_tokens or self._shapes.get("model.embed_tokens.weight", [None])[0]
        sizes = {
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": self._arch_value("feed_forward_length"),
            "num_hidden_layers": self._arch_value("block_count"),
            "head_dim": head_dim,
            "max_position_embeddings": self._arch_value("context_length"),
        }
        for key, size in sizes.items():
            self._size(key, size)
        config = {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": sizes["vocab_size"],
            "hidden_size": hidden,
            "intermediate_size": sizes["intermediate_size"],
            "num_hidden_layers": sizes["num_hidden_layers"],
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": sizes["max_position_embeddings"],
            "rms_norm_eps": self._float("attention.layer_norm_rms_epsilon"),
            "rope_theta": self._float("rope.freq_base", default=10000.0),
            "tie_word_embeddings": "lm_head.weight" not in self._shapes,
            "attention_bias": "model.layers.0.self_attn.q_proj.bias" in self._shapes,
            "mlp_bias": "model.layers.0.mlp.up_proj.bias" in self._shapes,
        }
        for name in ("bos", "eos", "padding"):
            token_id = self._metadata.get(f"tokenizer.ggml.{name}_token_id")
            if token_id is not None:
                config[f"{'pad' if name == 'padding' else name}_token_id"] = token_id
        return config

    # -- tensors ---------------------------------------------------------------

    def keys(self):
        return list(self._shapes)

    def source_name(self, name):
        self.shape(name)
        return self._sources[name]

    def ggml_type(self, name):
        """The stored type of tensor `name`, e.g. 'F32', 'Q8_0', 'Q4_1'."""
        self.shape(name)
        return self._types[name]

    def shape(self, name):
        if name not in self._shapes:
            raise self.missing(name)
        return self._shapes[name]

    def dtype(self, name):
        self.shape(name)
        return np.dtype(np.float32)

    def read(self, name):
        self.shape(name)
        if self._reader is None:
            raise CheckpointError(f"GGUF file {self.path} is closed")
        tensor = self._tensors[name]
        try:
            values = self._dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError as error:
            raise CheckpointError(
                f"GGUF file {self.path}: cannot dequantise tensor {tensor.name!r} of type "
                f"{tensor.tensor_type.name}: {error}"
            ) from None
        except (ValueError, OSError) as error:  # e.g. the file shrank under the memory map
            raise CheckpointError(
                f"cannot read tensor {tensor.name!r} from {self.path}: {error}"
            ) from None
        values = np.asarray(values).reshape(self.shape(name))
        if values.dtype != np.float32 or np.may_share_memory(values, tensor.data):
            values = values.astype(np.float32)  # a copy: never a view of the memory map
        if ".self_attn.q_proj." in name:
            values = self._unpermute(name, values, self._heads[0])
        elif ".self_attn.k_proj." in name:
            values = self._unpermute(name, values, self._heads[1])
        return values

    def _unpermute(self, name, values, heads):
        """Undo llama.cpp's reordering of query/key rows: within each head it
        stores the rows as (pair, half) where HF has (half, pair), i.e. the two
        rotary halves interleaved."""
        rows = values.shape[0]
        if rows % (2 * heads):
            raise CheckpointError(
                f"GGUF file {self.path}: tensor {self.source_name(name)!r} has {rows} rows, "
                f"not a multiple of 2 x {heads} heads"
            )
        half = rows // heads // 2
        rest = values.shape[1:]
        split = values.reshape(heads, half, 2, *rest)
        return np.ascontiguousarray(split.swapaxes(1, 2)).reshape(values.shape)

    def close(self):
        reader = getattr(self, "_reader", None)
        if reader is not None:
            memmap = getattr(reader, "data", None)
            mapping = getattr(memmap, "_mmap", None)
            self._reader = None
            self._tensors = {}
            del reader, memmap
            if mapping is not None:
                try:
                    mapping.close()
                except (BufferError, ValueError):  # views still alive; the GC closes it
                    pass


def _hf_name(gguf_name):
    """The HF Llama name of a GGUF tensor name, or None."""
    match = _LAYER_PATTERN.fullmatch(gguf_name)
    if match:
        layer, part, kind = match.groups()
        if part in _LAYER_NAMES:
            return f"model.layers.{int(layer)}.{_LAYER_NAMES[part]}.{kind}"
        return None
    match = _GLOBAL_PATTERN.fullmatch(gguf_name)
    if match and match.group(1) in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[match.group(1)]}.{match.group(2)}"
    return None
