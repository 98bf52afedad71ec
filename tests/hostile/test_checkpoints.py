"""Hostile checkpoints: corrupt, truncated, malicious and size-bomb files in
every supported format, built here byte by byte from the formats' specs.

Every `test_error_*` case checks the exact exception type and a message that
names the file (or tensor, or key) and the problem; every `test_output_*`
case is a legal but unusual input that must load exactly, compared with the
arrays the file was written from.

Size bombs: small files that declare tensors of gigabytes or more. Their
tests measure the peak memory Python allocates while the file is opened and
read (tracemalloc sees numpy's and bytearray's buffers) and require it to stay
under BOMB_PEAK_LIMIT.

The TF bundle cases write their `.index` tables with the package's own
sorted-table writer (checked byte for byte against TensorFlow in
tests/checkpoints/test_tf_bundle.py); the entries inside are written here.
"""

import contextlib
import itertools
import json
import os
import pickle
import re
import shutil
import struct
import tracemalloc
import zipfile
from pathlib import Path

import keras
import ml_dtypes
import numpy as np
import pytest

from nlp4keras.checkpoints import (
    CheckpointError,
    SafetensorsReader,
    TFCheckpointReader,
    TorchBinReader,
    open_checkpoint,
)
from nlp4keras.checkpoints.crc32c import masked_crc32c
from nlp4keras.checkpoints.protobuf_wire import bytes_field, fixed32_field, varint_field
from nlp4keras.checkpoints.sstable import build_table
from nlp4keras.models import build_transformer_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG = FIXTURES / "bert_tf" / "bert_config.json"
WEIGHTS = dict(np.load(FIXTURES / "bert_tf" / "weights.npz"))
WORDS = "bert/embeddings/word_embeddings"
GAMMA = "bert/embeddings/LayerNorm/gamma"
KERNEL = "bert/encoder/layer_0/intermediate/dense/kernel"

# Python-side peak allowed while a size bomb is opened and read. The bombs
# declare 16 GiB or more; the tiny BERT's own weights are about 60 KB.
BOMB_PEAK_LIMIT = 2 << 20


# ---------------------------------------------------------------------------
# Assertions


@contextlib.contextmanager
def fails(pattern, names=None, kind=CheckpointError):
    """Like pytest.raises(kind, match=pattern), but the type must be exactly
    `kind`, and the message must contain the path `names` when given."""
    with pytest.raises(kind, match=pattern) as info:
        yield info
    assert type(info.value) is kind, f"{type(info.value).__name__}: {info.value}"
    if names is not None:
        assert str(names) in str(info.value), f"{names} not in: {info.value}"


def peak_bytes_of_failure(action, pattern, names=None):
    """Run `action`, which must fail like `fails(pattern, names)`; return the
    peak number of bytes Python allocated meanwhile."""
    tracemalloc.start()
    try:
        with fails(pattern, names):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read_all(path):
    """Open a checkpoint and read every tensor (what a loader would do)."""
    with open_checkpoint(path) as reader:
        return {name: reader.read(name) for name in reader.keys()}


# ---------------------------------------------------------------------------
# The model every loading case uses: the committed fixture's tiny BERT


@pytest.fixture(scope="module")
def bert():
    """The tiny BERT of tests/fixtures/bert_tf (hidden 16, vocab 50), every head."""
    return build_transformer_model(
        CONFIG, with_nsp=True, with_mlm="linear", return_keras_model=False
    )


def model_weights(bert):
    """{checkpoint name: value in the model}, through the public variable_mapping()."""
    values = {}
    for layer_name, names in bert.variable_mapping().items():
        try:
            layer = bert.model.get_layer(layer_name)
        except ValueError:
            continue
        for weight, name in zip(layer.weights, names):
            values[name] = keras.ops.convert_to_numpy(weight)
    return values


def assert_model_holds(bert, expected):
    """The model's weights equal `expected` (Google layout) exactly, as float32."""
    held = model_weights(bert)
    assert sorted(held) == sorted(WEIGHTS)
    for name, value in expected.items():
        value = np.asarray(value, dtype=np.float32)
        if name == "cls/seq_relationship/output_weights":
            value = value.T  # the model keeps this head's kernel as [hidden, 2]
        np.testing.assert_array_equal(held[name], value, err_msg=name)


_SEEDS = itertools.count(1)


def scrambled(weights):
    """Fresh random values for every weight, different at each call, so that a
    load that skipped a weight cannot pass on what an earlier test loaded."""
    rng = np.random.default_rng(next(_SEEDS))
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in weights.items()}


def dtype_mismatch(name, found, path):
    return (
        rf"dtype mismatch for '{name}'.*: {found} in the checkpoint, float32 for weight "
        rf"'{path}', which takes only floating-point tensors"
    )


# ---------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, data

ST_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "uint8": "U8",
    "bool": "BOOL",
}


def st_layout(tensors):
    """(header, data) for arrays laid end to end in dict order."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": ST_DTYPES[array.dtype.name],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    return header, b"".join(chunks)


def st_bytes(header, data=b"", header_size=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(text) if header_size is None else header_size
    return struct.pack("<Q", size) + text + data


SMALL = {"a": np.arange(6, dtype="<f4").reshape(2, 3), "b": np.ones(4, "<f2")}
SMALL_HEADER, SMALL_DATA = st_layout(SMALL)  # 'a': bytes 0..24, 'b': 24..32
GOOD_ST = st_bytes(SMALL_HEADER, SMALL_DATA)


def st_with(**changes):
    """The small file with some header entries replaced (None drops one)."""
    header = json.loads(json.dumps(SMALL_HEADER))
    for name, entry in changes.items():
        if entry is None:
            header.pop(name)
        else:
            header[name] = entry
    return st_bytes(header, SMALL_DATA)


def a_entry(**fields):
    return {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24], **fields}


SAFETENSORS_CASES = {
    "empty_file": (b"", "0 bytes is too short for the 8-byte header length"),
    "cut_in_length": (GOOD_ST[:5], "5 bytes is too short for the 8-byte header length"),
    "header_length_2_63": (
        st_bytes(SMALL_HEADER, SMALL_DATA, header_size=1 << 63),
        "header length 9223372036854775808 runs past the end",
    ),
    "cut_in_header": (GOOD_ST[:40], r"header length \d+ runs past the end of the 40-byte file"),
    "cut_in_data": (
        GOOD_ST[:-3],
        r"tensor 'b' occupies bytes 24\.\.32 of the data, but the file holds only 29",
    ),
    "not_json": (st_bytes(b"garbage!"), "the header is not valid JSON"),
    "not_utf8": (st_bytes(b'{"a\xff": 1}'), "the header is not UTF-8 text"),
    "json_list": (st_bytes(b"[1, 2]"), "the header is a JSON list, not an object"),
    "deeply_nested_json": (st_bytes(b"[" * 100_000), "the header is not valid JSON"),
    "entry_not_object": (st_with(a=5), "tensor 'a' is described by 5, not an object"),
    "no_dtype": (st_with(a={"shape": [2, 3], "data_offsets": [0, 24]}), "'a' has no 'dtype'"),
    "no_offsets": (st_with(a={"dtype": "F32", "shape": [2, 3]}), "'a' has no 'data_offsets'"),
    "unknown_dtype": (st_with(a=a_entry(dtype="F7")), "tensor 'a' has unknown dtype 'F7'"),
    "negative_dim": (
        st_with(a=a_entry(shape=[-2, -3])),
        r"tensor 'a' has shape \[-2, -3\]; expected a list of sizes >= 0",
    ),
    "float_dim": (st_with(a=a_entry(shape=[2.0, 3])), r"'a' has shape \[2\.0, 3\]"),
    "bool_dim": (st_with(a=a_entry(shape=[True, 6])), r"'a' has shape \[True, 6\]"),
    "offsets_reversed": (
        st_with(a=a_entry(data_offsets=[24, 0])),
        r"'a' has data_offsets \[24, 0\]: begin is after end",
    ),
    "offsets_not_a_pair": (
        st_with(a=a_entry(data_offsets=[0])),
        r"'a' has data_offsets \[0\]; expected \[begin, end\]",
    ),
    "shape_vs_byte_range": (
        st_with(a=a_entry(shape=[2, 2])),
        r"'a' of shape \(2, 2\) and dtype F32 takes 16 bytes, but its data_offsets "
        r"\[0, 24\] hold 24",
    ),
    "overlapping_tensors": (
        st_with(b={"dtype": "F16", "shape": [4], "data_offsets": [20, 28]}),
        r"tensors 'a' and 'b' overlap \(bytes 20\.\.24\)",
    ),
    "gap_between_tensors": (
        st_with(a=a_entry(shape=[5], data_offsets=[0, 20])),
        r"bytes 20\.\.24 of the data belong to no tensor \(a gap before 'b'\)",
    ),
    "trailing_bytes": (
        st_bytes(SMALL_HEADER, SMALL_DATA + b"xx"),
        "the data holds 34 bytes but its tensors cover only 32",
    ),
    "duplicate_name": (
        st_bytes(
            b'{"a": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]},'
            b' "a": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]}}',
            SMALL_DATA,
        ),
        "the header lists 'a' more than once",
    ),
    "metadata_not_strings": (
        st_with(__metadata__={"format": 1}),
        "__metadata__ must map strings to strings",
    ),
}


@pytest.mark.parametrize("content, pattern", SAFETENSORS_CASES.values(), ids=SAFETENSORS_CASES)
def test_error_safetensors_file(tmp_path, content, pattern):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with fails(rf"corrupt safetensors file {re.escape(str(path))}: .*{pattern}"):
        read_all(path)


# A shape of 2**32 float32 elements: 16 GiB declared.
HUGE = [1 << 16, 1 << 16]
SAFETENSORS_BOMBS = {
    "huge_shape_tiny_range": (
        {"a": {"dtype": "F32", "shape": HUGE, "data_offsets": [0, 4]}},
        b"\0" * 4,
        r"'a' of shape \(65536, 65536\) and dtype F32 takes 17179869184 bytes",
    ),
    "huge_range_past_file": (
        {"a": {"dtype": "F32", "shape": HUGE, "data_offsets": [0, 1 << 34]}},
        b"\0" * 4,
        r"'a' occupies bytes 0\.\.17179869184 of the data, but the file holds only 4",
    ),
}


@pytest.mark.parametrize("header, data, pattern", SAFETENSORS_BOMBS.values(), ids=SAFETENSORS_BOMBS)
def test_error_safetensors_size_bomb(tmp_path, header, data, pattern):
    path = tmp_path / "bomb.safetensors"
    path.write_bytes(st_bytes(header, data))
    assert path.stat().st_size < 200
    peak = peak_bytes_of_failure(lambda: read_all(path), pattern, names=path)
    assert peak < BOMB_PEAK_LIMIT, peak


def test_output_safetensors_legal_oddities(tmp_path, bert):
    """JSON order unlike the data order, a header padded with spaces (as the
    reference writer pads to 8 bytes), __metadata__, plus a scalar and an
    empty tensor the model does not use: all legal, and loaded exactly."""
    weights = scrambled(WEIGHTS)
    extras = {"extra/scalar": np.array(2.5, "<f4"), "extra/empty": np.zeros((0, 3), "<f4")}
    header, data = st_layout({**weights, **extras})
    header = dict(reversed(header.items()))
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode() + b" " * 13
    path = tmp_path / "model.safetensors"
    path.write_bytes(st_bytes(text, data))
    report = bert.load_weights_from_checkpoint(path)
    assert sorted(report.unexpected) == ["extra/empty", "extra/scalar"]
    assert_model_holds(bert, weights)
    with SafetensorsReader(path) as reader:
        assert reader.read("extra/scalar").shape == () and reader.read("extra/scalar") == 2.5
        assert reader.read("extra/empty").shape == (0, 3)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_output_safetensors_half_precision_bytes(tmp_path, bert, dtype):
    """Hand-written F16 / BF16 bytes load into float32 weights value for value."""
    numpy_dtype = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    weights = {k: v.astype(numpy_dtype) for k, v in scrambled(WEIGHTS).items()}
    path = tmp_path / "model.safetensors"
    path.write_bytes(st_bytes(*st_layout(weights)))
    bert.load_weights_from_checkpoint(path)
    assert_model_holds(bert, {k: v.astype(np.float32) for k, v in weights.items()})


# ---------------------------------------------------------------------------
# torch.save zip archives, with the pickle written opcode by opcode

STORAGES = {
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


def _int(value):
    return b"I%d\n" % value


def _ints(values):
    return b"(" + b"".join(map(_int, values)) + b"t"


def torch_pickle(tensors, legacy=False):
    """A protocol-2 pickle of {name: tensor} the way torch.save writes one; each
    tensor is (storage class, storage key, storage numel, offset, shape, strides)
    and is rebuilt by torch._utils._rebuild_tensor_v2 from a persistent id."""
    body = b""
    for name, (cls, key, numel, offset, shape, strides) in tensors.items():
        pid = b"(Vstorage\nctorch\n%s\nV%s\nVcpu\n" % (cls.encode(), key.encode())
        pid += _int(numel) + (b"N" if legacy else b"") + b"tQ"
        args = pid + _int(offset) + _ints(shape) + _ints(strides) + b"\x89}"
        body += b"V%s\nctorch._utils\n_rebuild_tensor_v2\n(%stR" % (name.encode(), args)
    return b"\x80\x02}(" + body + b"u."


def strides_of(shape):
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def torch_layout(arrays, legacy=False):
    """(pickle, {key: bytes}) for arrays, one contiguous storage each."""
    tensors, storages = {}, {}
    for i, (name, array) in enumerate(arrays.items()):
        key = str(i)
        cls = STORAGES[array.dtype.name]
        tensors[name] = (cls, key, array.size, 0, array.shape, strides_of(array.shape))
        storages[key] = np.ascontiguousarray(array).tobytes()
    return torch_pickle(tensors, legacy), storages


def torch_zip(path, pickled, storages, compression=zipfile.ZIP_STORED):
    """A torch.save archive: archive/data.pkl (left out if None), byteorder,
    one data/<key> entry per storage, version."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        if pickled is not None:
            archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
    return path


def one_tensor_zip(path, numel=6, offset=0, shape=(2, 3), strides=(3, 1), data=None):
    """An archive holding one float32 tensor 'w' on storage '0'."""
    data = np.arange(6, dtype="<f4").tobytes() if data is None else data
    pickled = torch_pickle({"w": ("FloatStorage", "0", numel, offset, shape, strides)})
    return torch_zip(path, pickled, {"0": data})


def patch_central_directory(path, entry_name, field_offset, value):
    """Overwrite a field of an entry's central directory record (the listing
    zipfile trusts): at 6 the version needed to extract (2 bytes), at 20 the
    compressed size, at 24 the uncompressed size (4 bytes each)."""
    data = bytearray(path.read_bytes())
    record = data.rfind(b"PK\x01\x02", 0, data.rfind(entry_name.encode()))
    packed = struct.pack("<H" if field_offset == 6 else "<I", value)
    data[record + field_offset : record + field_offset + len(packed)] = packed
    path.write_bytes(bytes(data))
    return path


def flip_byte_inside(path, needle):
    """Flip one byte of the first occurrence of `needle` (inside an entry's data)."""
    data = bytearray(path.read_bytes())
    position = data.index(needle) + len(needle) // 2
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def zip_with_compression(path, method):
    pickled, storages = torch_layout({"w": np.ones(8, "<f4")})
    return torch_zip(path, pickled, storages, compression=method)


def torch_zip_cases():
    """{id: (build(path), pattern)}: archives broken in one way each."""
    ones = np.ones(6, "<f4").tobytes()
    return {
        "numel_exceeds_entry": (
            lambda p: one_tensor_zip(p, numel=10**12),
            r"storage '0' declares 1000000000000 elements \(4000000000000 bytes\), but the "
            r"file holds only 24 bytes",
        ),
        "view_past_declared_storage": (
            lambda p: one_tensor_zip(p, offset=4),
            r"tensor 'w' needs bytes 16\.\.40 of storage '0', which is declared with only 24",
        ),
        "view_past_entry": (
            lambda p: one_tensor_zip(p, data=ones[:20]),
            r"tensor 'w' needs 24 bytes of storage '0', which holds only 20",
        ),
        "negative_stride": (
            lambda p: one_tensor_zip(p, strides=(3, -1)),
            r"malformed pickle data \(ValueError: bad tensor strides: \(3, -1\)\)",
        ),
        "strides_shorter_than_shape": (
            lambda p: one_tensor_zip(p, strides=(1,)),
            r"shape \(2, 3\) and strides \(1,\) differ in length",
        ),
        "bad_crc_in_storage": (
            lambda p: flip_byte_inside(one_tensor_zip(p, data=b"\x11" * 24), b"\x11" * 24),
            r"cannot read tensor 'w' from .*: entry archive/data/0 is corrupt \(Bad CRC-32",
        ),
        "bad_crc_in_pickle": (
            lambda p: flip_byte_inside(one_tensor_zip(p), b"_rebuild_tensor_v2"),
            r"cannot read the pickle from .*: entry archive/data.pkl is corrupt \(Bad CRC-32",
        ),
        "lzma_entries": (
            lambda p: zip_with_compression(p, zipfile.ZIP_LZMA),
            "zip entry archive/data.pkl uses compression method 14",
        ),
        "bzip2_entries": (
            lambda p: zip_with_compression(p, zipfile.ZIP_BZIP2),
            "zip entry archive/data.pkl uses compression method 12",
        ),
        "deflate_size_lie": (
            lambda p: patch_central_directory(
                zip_with_compression(p, zipfile.ZIP_DEFLATED), "archive/data/0", 24, 3 << 30
            ),
            r"zip entry archive/data/0 declares 3221225472 bytes from \d+ compressed bytes, "
            "more than deflate can expand to",
        ),
        "stored_size_lie": (
            lambda p: patch_central_directory(one_tensor_zip(p), "archive/data/0", 24, 1 << 31),
            r"zip entry archive/data/0 is stored uncompressed but declares 2147483648 bytes "
            r"while holding 24",
        ),
        "entry_past_end_of_file": (
            lambda p: patch_central_directory(one_tensor_zip(p), "archive/data/0", 20, 1 << 31),
            r"zip entry archive/data/0 declares 2147483648 bytes at offset \d+, past the end",
        ),
        "zip_version_from_the_future": (
            lambda p: patch_central_directory(one_tensor_zip(p), "archive/data/0", 6, 200),
            r"is a truncated or corrupt zip archive: zip file version 20\.0",
        ),
        "no_data_pkl": (
            lambda p: torch_zip(p, None, {}),
            "is a zip archive without data.pkl, so not a torch.save checkpoint",
        ),
        "missing_storage_entry": (
            lambda p: torch_zip(p, torch_layout({"w": np.ones(3, "<f4")})[0], {}),
            r"tensor 'w' uses storage data/0, which is missing from the archive",
        ),
        "storage_declared_twice": (
            lambda p: torch_zip(
                p,
                torch_pickle(
                    {
                        "w": ("FloatStorage", "0", 2, 0, (2,), (1,)),
                        "v": ("HalfStorage", "0", 4, 0, (4,), (1,)),
                    }
                ),
                {"0": bytes(8)},
            ),
            "storage '0' is declared twice",
        ),
        "root_is_a_list": (
            lambda p: torch_zip(p, pickle.dumps([1, 2], protocol=2), {}),
            "holds a list, not a dict of tensors",
        ),
        "bad_persistent_id": (
            lambda p: torch_zip(p, b"\x80\x02}(Vw\n(Vstorage\nI1\ntQu.", {}),
            r"malformed pickle data \(ValueError: unexpected persistent id",
        ),
        "rebuild_from_a_string": (
            lambda p: torch_zip(
                p,
                b"\x80\x02}(Vw\nctorch._utils\n_rebuild_tensor_v2\n(Vx\nI0\n(I2\nt(I1\nt\x89}tRu.",
                {},
            ),
            "tensor rebuilt from something that is not a storage",
        ),
        "garbage_bytes": (
            lambda p: p.write_bytes(b"\0" + np.random.default_rng(0).bytes(700)),
            r"is not a PyTorch checkpoint \(neither a zip archive nor a pickle\)",
        ),
    }


TORCH_ZIP_CASES = torch_zip_cases()


@pytest.mark.parametrize("build, pattern", TORCH_ZIP_CASES.values(), ids=TORCH_ZIP_CASES)
def test_error_torch_zip(tmp_path, build, pattern):
    path = tmp_path / "pytorch_model.bin"
    build(path)
    with fails(pattern, names=path):
        read_all(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_error_torch_zip_truncated(tmp_path, fraction):
    whole = one_tensor_zip(tmp_path / "whole.bin").read_bytes()
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(whole[: int(len(whole) * fraction)])
    with fails(rf"{re.escape(str(path))} is a truncated or corrupt zip archive"):
        read_all(path)


MALICIOUS_GLOBALS = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("subprocess", "Popen"),
    ("torch", "load"),
]


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize(
    "module, name", MALICIOUS_GLOBALS, ids=[".".join(g) for g in MALICIOUS_GLOBALS]
)
def test_error_torch_malicious_global(tmp_path, module, name, layout):
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()
    pickled = b"\x80\x02c%s\n%s\n(V%s\ntR." % (module.encode(), name.encode(), command)
    path = tmp_path / "pytorch_model.bin"
    if layout == "zip":
        torch_zip(path, pickled, {})
    else:
        legacy_stream(path, pickled, {})
    with fails(rf"refusing to load {re.escape(str(path))}: it references '{module}\.{name}'"):
        read_all(path)
    assert not marker.exists()


# Tensors whose declared size is 2**32 elements of 4 bytes, from a tiny file.
TORCH_BOMBS = {
    "stride0_view": (
        {"w": ("FloatStorage", "0", 1, 0, (1 << 16, 1 << 16), (0, 0))},
        {"0": bytes(4)},
        r"tensor 'w' of shape \(65536, 65536\) has strides \(0, 0\), so its 4294967296 "
        r"elements repeat 1 stored ones; copying it would take 17179869184 bytes",
    ),
    "overlapping_strides": (
        {"w": ("FloatStorage", "0", 1 << 17, 0, (1 << 16, 1 << 16), (1, 1))},
        {"0": bytes(1 << 19)},
        r"its 4294967296 elements repeat 131071 stored ones",
    ),
    "numel_bomb": (
        {"w": ("FloatStorage", "0", 1 << 32, 0, (1 << 32,), (1,))},
        {"0": bytes(4)},
        r"tensor 'w' needs 17179869184 bytes of storage '0', which holds only 4",
    ),
}


@pytest.mark.parametrize("tensors, storages, pattern", TORCH_BOMBS.values(), ids=TORCH_BOMBS)
def test_error_torch_size_bomb(tmp_path, tensors, storages, pattern):
    path = torch_zip(tmp_path / "pytorch_model.bin", torch_pickle(tensors), storages)
    with TorchBinReader(path) as reader:
        shape = reader.shape("w")
        peak = peak_bytes_of_failure(lambda: reader.read("w"), pattern, names=path)
    assert np.prod(shape, dtype=np.float64) >= 2**32
    assert peak < BOMB_PEAK_LIMIT, peak


# Pickles that make Python's own unpickler allocate from a size they state.
PICKLE_BOMBS = {
    # LONG_BINPUT to memo slot 2**31 - 1: the unpickler grows its memo to match.
    "memo_index": (
        b"\x80\x02}r\xff\xff\xff\x7f.",
        r"LONG_BINPUT to memo slot 2147483647 after only 2 opcodes",
    ),
    # BINBYTES8 of 2**40 bytes: the unpickler allocates them before reading.
    "counted_bytes": (
        b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"tiny.",
        "expected 1099511627776 bytes in a bytes8",
    ),
    # A protocol-4 frame of 2**40 bytes: read in one call on a real file.
    "frame": (
        b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.",
        "a frame of 1099511627776 bytes, but the file has only",
    ),
}


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("pickled, pattern", PICKLE_BOMBS.values(), ids=PICKLE_BOMBS)
def test_error_torch_pickle_size_bomb(tmp_path, pickled, pattern, layout):
    path = tmp_path / "pytorch_model.bin"
    if layout == "zip":
        torch_zip(path, pickled, {})
    else:
        legacy_stream(path, pickled, {})
    peak = peak_bytes_of_failure(
        lambda: TorchBinReader(path),
        rf"cannot read {re.escape(str(path))}: malformed pickle data .*{pattern}",
    )
    assert peak < BOMB_PEAK_LIMIT, peak


def test_output_torch_zip_deflated(tmp_path, bert):
    """torch.load reads deflated archives too; so must we, exactly."""
    weights = scrambled(WEIGHTS)
    path = torch_zip(tmp_path / "m.bin", *torch_layout(weights), compression=zipfile.ZIP_DEFLATED)
    bert.load_weights_from_checkpoint(path)
    assert_model_holds(bert, weights)


def test_output_torch_strided_views(tmp_path, bert):
    """A kernel stored transposed inside a larger storage (offset 5), and a
    LayerNorm gamma that is one stored value repeated (stride 0, as `expand`
    makes): legal, small, and loaded exactly."""
    weights = scrambled(WEIGHTS)
    rows, cols = weights[KERNEL].shape
    storage = np.concatenate([np.full(5, 9.0, "<f4"), weights[KERNEL].T.ravel()])
    weights[GAMMA] = np.full(16, 0.75, np.float32)
    pickled, storages = torch_layout({k: v for k, v in weights.items() if k not in (KERNEL, GAMMA)})
    views = {
        KERNEL: ("FloatStorage", "k", storage.size, 5, (rows, cols), (1, rows)),
        GAMMA: ("FloatStorage", "g", 1, 0, (16,), (0,)),
    }
    pickled = pickled[:-2] + torch_pickle(views)[4:]  # merge the two dicts' items
    storages.update(k=storage.tobytes(), g=np.float32(0.75).tobytes())
    path = torch_zip(tmp_path / "m.bin", pickled, storages)
    bert.load_weights_from_checkpoint(path)
    assert_model_holds(bert, weights)


# ---------------------------------------------------------------------------
# torch's legacy (pre-1.6) stream


def legacy_stream(path, pickled, storages, magic=0x1950A86A20F9469CFC6C, version=1001):
    """Magic, version and system-info pickles, the object pickle, the list of
    storage keys, then each storage as an 8-byte element count and its bytes.
    `storages` maps a key to (declared count, bytes)."""
    with open(path, "wb") as out:
        for value in (magic, version, {"protocol_version": 1001, "little_endian": True}):
            out.write(pickle.dumps(value, protocol=2))
        out.write(pickled)
        out.write(pickle.dumps(list(storages), protocol=2))
        for count, raw in storages.values():
            out.write(count.to_bytes(8, "little", signed=True) + raw)
    return path


def one_tensor_legacy(path, count=6, **stream_options):
    pickled = torch_pickle({"w": ("FloatStorage", "0", 6, 0, (2, 3), (3, 1))}, legacy=True)
    data = np.arange(6, dtype="<f4").tobytes()
    return legacy_stream(path, pickled, {"0": (count, data)}, **stream_options)


LEGACY_CASES = {
    "wrong_magic": (
        lambda p: one_tensor_legacy(p, magic=12345),
        "is a pickle but not a PyTorch checkpoint",
    ),
    "wrong_version": (
        lambda p: one_tensor_legacy(p, version=999),
        "unsupported legacy protocol version 999",
    ),
    "count_bomb": (
        lambda p: one_tensor_legacy(p, count=1 << 40),
        r"storage '0' declares 1099511627776 elements \(4398046511104 bytes\) at offset \d+, "
        r"past the end of the \d+-byte file",
    ),
    "negative_count": (
        lambda p: one_tensor_legacy(p, count=-1),
        r"storage '0' declares -1 elements",
    ),
    "storage_never_used": (
        lambda p: legacy_stream(p, torch_pickle({}, legacy=True), {"0": (1, bytes(4))}),
        "storage '0' is never used",
    ),
}


@pytest.mark.parametrize("build, pattern", LEGACY_CASES.values(), ids=LEGACY_CASES)
def test_error_torch_legacy(tmp_path, build, pattern):
    path = tmp_path / "old.bin"
    build(path)
    with fails(pattern, names=path):
        read_all(path)


@pytest.mark.parametrize("cut", [3, 40, 120, -30, -1])
def test_error_torch_legacy_truncated(tmp_path, cut):
    whole = one_tensor_legacy(tmp_path / "whole.bin").read_bytes()
    path = tmp_path / "old.bin"
    path.write_bytes(whole[:cut])
    with fails("malformed pickle data|is truncated", names=path):
        read_all(path)


def test_output_torch_legacy_layout(tmp_path, bert):
    weights = scrambled(WEIGHTS)
    pickled, storages = torch_layout(weights, legacy=True)
    counts = {key: (len(raw) // 4, raw) for key, raw in storages.items()}
    bert.load_weights_from_checkpoint(legacy_stream(tmp_path / "old.bin", pickled, counts))
    assert_model_holds(bert, weights)


# ---------------------------------------------------------------------------
# TensorFlow tensor bundles: `.index` sorted table of BundleEntryProto, `.data-*`

DT_FLOAT, DT_INT32, DT_STRING, DT_INT64 = 1, 3, 7, 9


def tf_entry(dtype=DT_FLOAT, shape=(2, 3), shard=0, offset=0, size=24, crc=0):
    """Serialized BundleEntryProto (dims of size 0 are written empty, as proto3 does)."""
    dims = b"".join(bytes_field(2, varint_field(1, d) if d else b"") for d in shape)
    out = varint_field(1, dtype) + bytes_field(2, dims)
    for number, value in ((3, shard), (4, offset), (5, size)):
        if value:
            out += varint_field(number, value)
    return out + (fixed32_field(6, crc) if crc else b"")


def tf_header(num_shards=1, big_endian=False):
    """Serialized BundleHeaderProto."""
    out = varint_field(1, num_shards) + bytes_field(3, varint_field(1, 1))
    return out + (varint_field(2, 1) if big_endian else b"")


def tf_bundle(prefix, entries, shards, header=None):
    """Write prefix.index and prefix.data-SSSSS-of-NNNNN; returns the prefix."""
    items = [(b"", header or tf_header(len(shards)))]
    items += sorted((name.encode(), proto) for name, proto in entries.items())
    Path(f"{prefix}.index").write_bytes(build_table(items))
    for i, data in enumerate(shards):
        Path(f"{prefix}.data-{i:05d}-of-{len(shards):05d}").write_bytes(data)
    return prefix


def tf_layout(arrays, dtypes=None):
    """({name: entry}, data) of a one-shard bundle of arrays (float32 unless
    `dtypes` says otherwise)."""
    entries, data = {}, b""
    for name, array in arrays.items():
        raw = np.ascontiguousarray(array).tobytes()
        dtype = (dtypes or {}).get(name, DT_FLOAT)
        entries[name] = tf_entry(dtype, array.shape, 0, len(data), len(raw), masked_crc32c(raw))
        data += raw
    return entries, data


def tf_arrays(prefix, arrays, dtypes=None):
    entries, data = tf_layout(arrays, dtypes)
    return tf_bundle(prefix, entries, [data])


W_BYTES = np.arange(6, dtype="<f4").tobytes()
W_CRC = masked_crc32c(W_BYTES)


def one_tensor_tf(prefix, **entry_fields):
    fields = {"crc": W_CRC, **entry_fields}
    return tf_bundle(prefix, {"w": tf_entry(**fields)}, [W_BYTES])


def flip_file_byte(path, position):
    data = bytearray(Path(path).read_bytes())
    data[position] ^= 0x55
    Path(path).write_bytes(bytes(data))


def tf_cases():
    index = "{p}.index"
    return {
        "offset_past_shard": (
            lambda p: one_tensor_tf(p, offset=100),
            r"data-00000-of-00001 is truncated \(or its index corrupt\): tensor 'w' needs "
            r"bytes 100\.\.124, but the file has 24",
        ),
        "size_unlike_shape": (
            lambda p: one_tensor_tf(p, size=20),
            r"tensor 'w' of shape \(2, 3\) and dtype float32 should take 24 bytes, not 20",
        ),
        "negative_dim": (
            lambda p: one_tensor_tf(p, shape=(-1, 3)),
            "entry of tensor 'w': unknown dimension in a saved tensor shape",
        ),
        "dims_beyond_any_array": (
            lambda p: one_tensor_tf(p, shape=(1 << 62, 1 << 62, 0)),
            r"tensor 'w' .* has shape \(4611686018427387904, 4611686018427387904, 0\), "
            "too large for any array",
        ),
        "unknown_dtype": (
            lambda p: one_tensor_tf(p, dtype=99),
            "tensor 'w' .* has unsupported dtype DataType 99",
        ),
        "shard_out_of_range": (
            lambda p: one_tensor_tf(p, shard=3),
            r"tensor 'w' is in shard 3, but the checkpoint has 1 shard\(s\)",
        ),
        "zero_shards": (
            lambda p: tf_bundle(p, {}, [], header=tf_header(0)),
            "corrupt bundle header in .*index: 0 shards",
        ),
        "big_endian": (
            lambda p: tf_bundle(p, {}, [b""], header=tf_header(big_endian=True)),
            "is a big-endian checkpoint, which is not supported",
        ),
        "missing_data_file": (
            lambda p: (one_tensor_tf(p), os.remove(f"{p}.data-00000-of-00001")),
            r"data file .*data-00000-of-00001 of checkpoint .* is missing "
            r"\(needed for tensor 'w'\)",
        ),
        "flipped_data_byte": (
            lambda p: (one_tensor_tf(p), flip_file_byte(f"{p}.data-00000-of-00001", 5)),
            r"CRC32C mismatch for tensor 'w' in .*data-00000-of-00001: the data is corrupt",
        ),
        "flipped_index_byte": (
            lambda p: (one_tensor_tf(p), flip_file_byte(index.format(p=p), 12)),
            r"CRC32C mismatch in .*\.index: block at offset 0 is corrupt",
        ),
        "bad_magic": (
            lambda p: (one_tensor_tf(p), flip_file_byte(index.format(p=p), -1)),
            r"\.index is not a TensorFlow checkpoint index \(bad magic number",
        ),
        "garbage_index": (
            lambda p: (
                one_tensor_tf(p),
                Path(index.format(p=p)).write_bytes(np.random.default_rng(1).bytes(163)),
            ),
            r"\.index is not a TensorFlow checkpoint index \(bad magic number",
        ),
        "string_tensor_with_bad_lengths": (
            lambda p: tf_bundle(p, {"s": tf_entry(DT_STRING, (2,), size=3)}, [b"\xff\xff\xff"]),
            "corrupt string tensor 's' in .*: bad element lengths",
        ),
    }


TF_CASES = tf_cases()


@pytest.mark.parametrize("build, pattern", TF_CASES.values(), ids=TF_CASES)
def test_error_tf_bundle(tmp_path, build, pattern):
    prefix = str(tmp_path / "model.ckpt")
    build(prefix)
    with fails(pattern, names=prefix):
        read_all(prefix)


@pytest.mark.parametrize("keep", [0, 10, 47, -48, -1])
def test_error_tf_index_truncated(tmp_path, keep):
    """The committed fixture (copied first), its index cut short."""
    for name in ("generic.ckpt.index", "generic.ckpt.data-00000-of-00001"):
        shutil.copy(FIXTURES / "tf_bundle" / name, tmp_path / name)
    index = tmp_path / "generic.ckpt.index"
    index.write_bytes(index.read_bytes()[:keep])
    with fails(rf"{re.escape(str(index))} is (truncated or )?not a TensorFlow checkpoint index"):
        read_all(tmp_path / "generic.ckpt")


def test_error_tf_index_declaring_huge_tensor(tmp_path):
    """The issue's case: a tiny index declaring a 16 GiB tensor whose bytes the
    data file does not have. Nothing is allocated before the size check."""
    prefix = tf_bundle(
        str(tmp_path / "bomb.ckpt"), {"w": tf_entry(shape=HUGE, size=1 << 34)}, [W_BYTES]
    )
    assert os.path.getsize(f"{prefix}.index") < 200
    with TFCheckpointReader(prefix) as reader:
        peak = peak_bytes_of_failure(
            lambda: reader.read("w"),
            r"data-00000-of-00001 is truncated \(or its index corrupt\): tensor 'w' needs "
            r"bytes 0\.\.17179869184, but the file has 24",
            names=prefix,
        )
    assert peak < BOMB_PEAK_LIMIT, peak


STATE_FILES = {
    "not_utf8": (b"\xff\xfe\x00model", "is not a checkpoint state file: not UTF-8 text"),
    "no_path_line": (b'all_model_checkpoint_paths: "x"\n', "has no model_checkpoint_path line"),
    "names_a_missing_checkpoint": (
        b'model_checkpoint_path: "gone.ckpt"\n',
        r"names checkpoint 'gone\.ckpt', but gone\.ckpt\.index does not exist",
    ),
}


@pytest.mark.parametrize("content, pattern", STATE_FILES.values(), ids=STATE_FILES)
def test_error_tf_checkpoint_state_file(tmp_path, content, pattern):
    one_tensor_tf(str(tmp_path / "model.ckpt"))
    (tmp_path / "checkpoint").write_bytes(content)
    with fails(pattern, names=tmp_path / "checkpoint"):
        read_all(tmp_path)


def test_output_tf_two_shards_with_training_state(tmp_path, bert):
    """Weights spread over two shards, next to int64 global_step and Adam slots:
    the training state is skipped, every weight loads exactly."""
    weights = scrambled(WEIGHTS)
    names = sorted(weights)
    entries, shards = {}, [b"", b""]
    extra = {
        "global_step": (np.array(1234, "<i8"), DT_INT64),
        f"{WORDS}/adam_m": (np.ones((50, 16), "<f4"), DT_FLOAT),
    }
    items = [(name, weights[name], DT_FLOAT) for name in names] + [
        (name, value, dtype) for name, (value, dtype) in extra.items()
    ]
    for i, (name, value, dtype) in enumerate(items):
        raw, shard = value.tobytes(), i % 2
        entries[name] = tf_entry(
            dtype, value.shape, shard, len(shards[shard]), len(raw), masked_crc32c(raw)
        )
        shards[shard] += raw
    prefix = tf_bundle(str(tmp_path / "model.ckpt"), entries, shards)
    report = bert.load_weights_from_checkpoint(prefix)
    assert report.ok and report.unexpected == []
    assert_model_holds(bert, weights)


# ---------------------------------------------------------------------------
# Sharded HF checkpoints: *.index.json naming shard files


def sharded_folder(folder, weight_map=None, index_text=None):
    """Two safetensors shards ('a' in the first, 'b' in the second) and an index."""
    header_a, data_a = st_layout({"a": SMALL["a"]})
    header_b, data_b = st_layout({"b": SMALL["b"]})
    (folder / "model-00001-of-00002.safetensors").write_bytes(st_bytes(header_a, data_a))
    (folder / "model-00002-of-00002.safetensors").write_bytes(st_bytes(header_b, data_b))
    if weight_map is None:
        weight_map = {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    if index_text is None:
        index_text = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    index = folder / "model.safetensors.index.json"
    index.write_bytes(index_text)
    return index


SHARD_CASES = {
    "missing_shard": (
        {"a": "model-00001-of-00002.safetensors", "b": "model-00009-of-00009.safetensors"},
        None,
        r"shard .*model-00009-of-00009\.safetensors listed in .* \(for 'b' and maybe others\) "
        "does not exist",
    ),
    "tensor_not_in_its_shard": (
        {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"},
        None,
        r"puts tensor 'b' in .*model-00001-of-00002\.safetensors, which does not hold it",
    ),
    "parent_folder": (
        {"a": "../model-00001-of-00002.safetensors"},
        None,
        r"puts tensor 'a' in '\.\./model-00001-of-00002\.safetensors', outside the index's",
    ),
    "absolute_path": (
        {"a": "/etc/passwd"},
        None,
        r"puts tensor 'a' in '/etc/passwd', outside the index's folder",
    ),
    "shard_not_a_string": ({"a": 5}, None, "gives tensor 'a' the shard 5; expected a file name"),
    "not_json": (None, b"{weight_map: oops", "not JSON text"),
    "not_utf8": (None, b'{"weight_map": {"\xff": "x"}}', "not JSON text"),
    "no_weight_map": (None, b'{"metadata": {}}', "expected a JSON object with a 'weight_map'"),
    "weight_map_a_list": (None, b'{"weight_map": ["a"]}', "with a 'weight_map' object"),
}


@pytest.mark.parametrize("weight_map, text, pattern", SHARD_CASES.values(), ids=SHARD_CASES)
def test_error_sharded_index(tmp_path, weight_map, text, pattern):
    index = sharded_folder(tmp_path, weight_map, text)
    with fails(pattern, names=index):
        read_all(tmp_path)


def test_output_sharded_index(tmp_path, bert):
    weights = scrambled(WEIGHTS)
    names = sorted(weights)
    halves = {1: names[::2], 2: names[1::2]}
    weight_map = {}
    for number, part in halves.items():
        shard = f"model-0000{number}-of-00002.safetensors"
        (tmp_path / shard).write_bytes(st_bytes(*st_layout({n: weights[n] for n in part})))
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    bert.load_weights_from_checkpoint(tmp_path)
    assert_model_holds(bert, weights)


# ---------------------------------------------------------------------------
# Dict checkpoints


class Opaque:
    pass


VALUE = f"the value of '{WORDS}'"
DICT_CASES = {
    "none": ({WORDS: None}, rf"{VALUE} is None; expected an array"),
    "string": ({WORDS: "weights.npy"}, rf"{VALUE} is of type str, not an array"),
    "nested_dict": ({WORDS: {"w": np.ones(2)}}, rf"{VALUE} is of type dict, not an array"),
    "opaque_object": ({WORDS: Opaque()}, rf"{VALUE} is of type Opaque, not an array"),
    "object_array": ({WORDS: np.array([Opaque()])}, rf"{VALUE} holds object items, not numbers"),
    "string_array": ({WORDS: np.array(["a", "b"])}, rf"{VALUE} holds str\d+ items, not numbers"),
    "bytes_array": ({WORDS: np.array([b"a"])}, rf"{VALUE} holds bytes\d+ items, not numbers"),
    "record_array": ({WORDS: np.zeros(2, "f4,i4")}, rf"{VALUE} holds void\d+ items, not numbers"),
    "ragged_list": ({WORDS: [[1.0, 2.0], [3.0]]}, rf"{VALUE} is not a rectangular array"),
    "list_of_strings": ({WORDS: ["a", "b"]}, rf"{VALUE} holds str\d+ items, not numbers"),
    "int_key": ({3: np.ones(2)}, r"key 3 \(int\) is not a tensor name; keys must be strings"),
    "tuple_key": ({("a", "b"): np.ones(2)}, r"key \('a', 'b'\) \(tuple\) is not a tensor name"),
}


@pytest.mark.parametrize("tensors, pattern", DICT_CASES.values(), ids=DICT_CASES)
def test_error_dict_checkpoint(bert, tensors, pattern):
    with fails(rf"dict checkpoint: {pattern}"):
        bert.load_weights_from_checkpoint({**WEIGHTS, **tensors})


def test_output_dict_of_lists_float64_and_torch(bert):
    """Nested lists, float64 arrays and torch bfloat16 tensors are all numbers."""
    torch = pytest.importorskip("torch")
    weights = scrambled(WEIGHTS)
    given = dict(weights)
    given[GAMMA] = weights[GAMMA].tolist()
    given[KERNEL] = weights[KERNEL].astype(np.float64)
    bf16 = weights[WORDS].astype(ml_dtypes.bfloat16)
    given[WORDS] = torch.from_numpy(bf16.view(np.int16).copy()).view(torch.bfloat16)
    bert.load_weights_from_checkpoint(given)
    assert_model_holds(bert, {**weights, WORDS: bf16.astype(np.float32)})


# ---------------------------------------------------------------------------
# Loading: non-float tensors into float weights, declared sizes before reading

WORDS_PATH = "Embedding-Token/embeddings"


def with_words(value):
    return {**WEIGHTS, WORDS: value}


def write_as(fmt, path, tensors):
    """Write Google-named tensors in one of the formats; returns what to load."""
    if fmt == "safetensors":
        path = path / "model.safetensors"
        path.write_bytes(st_bytes(*st_layout(tensors)))
        return path
    if fmt == "bin":
        return torch_zip(path / "pytorch_model.bin", *torch_layout(tensors))
    if fmt == "tf":
        tf_dtypes = {"int32": DT_INT32, "int64": DT_INT64, "uint8": 4, "bool": 10}
        dtypes = {name: tf_dtypes.get(a.dtype.name, DT_FLOAT) for name, a in tensors.items()}
        return tf_arrays(str(path / "model.ckpt"), tensors, dtypes)
    return tensors  # a dict


WORD_IDS = np.arange(50 * 16).reshape(50, 16)
NON_FLOAT_CASES = {
    "safetensors_int64": ("safetensors", WORD_IDS.astype("<i8"), "int64"),
    "safetensors_bool": ("safetensors", WORD_IDS % 2 == 0, "bool"),
    "safetensors_uint8": ("safetensors", (WORD_IDS % 256).astype("u1"), "uint8"),
    "bin_int64": ("bin", WORD_IDS.astype("<i8"), "int64"),
    "bin_uint8": ("bin", (WORD_IDS % 256).astype("u1"), "uint8"),
    "tf_int32": ("tf", WORD_IDS.astype("<i4"), "int32"),
    "tf_bool": ("tf", WORD_IDS % 3 == 0, "bool"),
    "dict_int64": ("dict", WORD_IDS.astype(np.int64), "int64"),
    "dict_bool": ("dict", WORD_IDS % 2 == 1, "bool"),
    "dict_complex": ("dict", WORD_IDS.astype(np.complex64), "complex64"),
}


@pytest.mark.parametrize("fmt, words, found", NON_FLOAT_CASES.values(), ids=NON_FLOAT_CASES)
def test_error_non_float_tensor_into_float_weight(tmp_path, bert, fmt, words, found):
    checkpoint = write_as(fmt, tmp_path, with_words(words))
    where = re.escape("<dict>" if fmt == "dict" else str(checkpoint))
    with fails(
        rf"checkpoint {where} does not fit(.|\n)*{dtype_mismatch(WORDS, found, WORDS_PATH)}"
    ):
        bert.load_weights_from_checkpoint(checkpoint)


def test_error_non_float_hf_named_tensor(tmp_path, bert):
    """The message gives the HF name the tensor is stored under, too."""
    hf_name = "bert.embeddings.word_embeddings.weight"
    path = torch_zip(tmp_path / "pytorch_model.bin", *torch_layout({hf_name: WORD_IDS}))
    with fails(rf"dtype mismatch for '{WORDS}' \(stored as '{hf_name}'\): int64"):
        bert.load_weights_from_checkpoint(path)


def test_error_tf_string_tensor_into_float_weight(tmp_path, bert):
    """A DT_STRING tensor under a weight's name, refused from the index alone."""
    entries, data = tf_layout({k: v for k, v in WEIGHTS.items() if k != WORDS})
    entries[WORDS] = tf_entry(DT_STRING, (), size=0)
    prefix = tf_bundle(str(tmp_path / "model.ckpt"), entries, [data])
    with fails(dtype_mismatch(WORDS, "object", WORDS_PATH)):
        bert.load_weights_from_checkpoint(prefix)


def test_output_ignore_invalid_weights_skips_non_float(tmp_path, bert):
    """With ignore_invalid_weights the int tensor is skipped with a warning,
    the others load, and the report lists it."""
    loose = build_transformer_model(CONFIG, ignore_invalid_weights=True, return_keras_model=False)
    before = keras.ops.convert_to_numpy(loose.model.get_layer("Embedding-Token").weights[0])
    weights = {k: v for k, v in scrambled(WEIGHTS).items() if not k.startswith("cls/")}
    with pytest.warns(UserWarning, match="dtype mismatch for 'bert/embeddings/word_embeddings'"):
        report = loose.load_weights_from_checkpoint({**weights, WORDS: WORD_IDS})
    assert [entry[0] for entry in report.wrong_dtype] == [WORDS]
    after = keras.ops.convert_to_numpy(loose.model.get_layer("Embedding-Token").weights[0])
    np.testing.assert_array_equal(after, before)
    kernel = loose.model.get_layer("Transformer-0-FeedForward").weights[0]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), weights[KERNEL])


def warm_up(bert):
    """Load good weights once, so that a measured load allocates nothing for
    the backend's first use (lazy imports, caches)."""
    bert.load_weights_from_checkpoint(WEIGHTS)


def shape_mismatch(name, declared, expected, path):
    return (
        rf"shape mismatch for '{name}'.*: {declared} in the checkpoint, {expected} "
        rf"for weight '{path}'"
    )


def test_error_declared_shape_checked_before_reading_bin(tmp_path, bert):
    """A 1.6 KB-style archive: the word embeddings are a stride-0 view of one
    float declaring 2**40 elements. The loader compares the declared shape
    with the weight's and reports the mismatch without reading."""
    pickled, storages = torch_layout({k: v for k, v in WEIGHTS.items() if k != WORDS})
    bomb = {WORDS: ("FloatStorage", "bomb", 1, 0, (1 << 20, 1 << 20), (0, 0))}
    pickled = pickled[:-2] + torch_pickle(bomb)[4:]
    storages["bomb"] = bytes(4)
    path = torch_zip(tmp_path / "pytorch_model.bin", pickled, storages)
    warm_up(bert)
    pattern = shape_mismatch(WORDS, r"\(1048576, 1048576\)", r"\(50, 16\)", WORDS_PATH)
    peak = peak_bytes_of_failure(lambda: bert.load_weights_from_checkpoint(path), pattern)
    assert peak < BOMB_PEAK_LIMIT, peak


def test_error_declared_rows_bomb_bin(tmp_path, bert):
    """Same width as the weight but 2**26 rows (keep_tokens could pick rows of
    a larger vocab, so the loader reads it): the reader refuses to copy a view
    that repeats one stored row into gigabytes."""
    pickled, storages = torch_layout({k: v for k, v in WEIGHTS.items() if k != WORDS})
    bomb = {WORDS: ("FloatStorage", "bomb", 16, 0, (1 << 26, 16), (0, 1))}
    pickled = pickled[:-2] + torch_pickle(bomb)[4:]
    storages["bomb"] = bytes(64)
    path = torch_zip(tmp_path / "pytorch_model.bin", pickled, storages)
    warm_up(bert)
    pattern = rf"tensor '{WORDS}' of shape \(67108864, 16\) has strides \(0, 1\)"
    peak = peak_bytes_of_failure(lambda: bert.load_weights_from_checkpoint(path), pattern)
    assert peak < BOMB_PEAK_LIMIT, peak


def test_error_declared_shape_checked_before_reading_tf(tmp_path, bert):
    """A TF index whose word embeddings declare 2**40 floats: reported as a
    shape mismatch from the index alone, the data file never touched."""
    entries, data = tf_layout({k: v for k, v in WEIGHTS.items() if k != WORDS})
    entries[WORDS] = tf_entry(DT_FLOAT, (1 << 20, 1 << 20), 0, 0, 1 << 42)
    prefix = tf_bundle(str(tmp_path / "model.ckpt"), entries, [data])
    warm_up(bert)
    pattern = shape_mismatch(WORDS, r"\(1048576, 1048576\)", r"\(50, 16\)", WORDS_PATH)
    peak = peak_bytes_of_failure(lambda: bert.load_weights_from_checkpoint(prefix), pattern)
    assert peak < BOMB_PEAK_LIMIT, peak


def test_error_legacy_count_bomb_through_loader(tmp_path, bert):
    pickled, storages = torch_layout(WEIGHTS, legacy=True)
    counts = {key: (len(raw) // 4, raw) for key, raw in storages.items()}
    counts["0"] = (1 << 40, counts["0"][1])
    path = legacy_stream(tmp_path / "pytorch_model.bin", pickled, counts)
    warm_up(bert)
    peak = peak_bytes_of_failure(
        lambda: bert.load_weights_from_checkpoint(path),
        "is truncated or corrupt: storage '0' declares 1099511627776 elements",
        names=path,
    )
    assert peak < BOMB_PEAK_LIMIT, peak


# ---------------------------------------------------------------------------
# Paths


def test_error_folder_without_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with fails(r"no checkpoint found in folder .*: looked for model\.safetensors", names=tmp_path):
        open_checkpoint(tmp_path)


def test_error_path_with_nul(tmp_path):
    with fails("contains a NUL character"):
        open_checkpoint(str(tmp_path / "model\0.bin"))


def test_error_empty_path():
    with fails("checkpoint path is empty"):
        open_checkpoint("")


def test_error_unknown_extension(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    with fails("cannot tell the checkpoint format of", names=path):
        open_checkpoint(path)
