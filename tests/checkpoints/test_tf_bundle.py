"""TensorFlow tensor-bundle checkpoints read and written without TensorFlow.

The fixtures in `tests/fixtures/tf_bundle/` were written by real TensorFlow
(see `tests/fixtures/make_tf_bundle_fixture.py`); these tests never import it.
"""

import gzip
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nlp4keras.checkpoints import crc32c as crc
from nlp4keras.checkpoints import protobuf_wire as wire
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.sstable import build_table, read_table
from nlp4keras.checkpoints.tf_bundle import TFCheckpointReader, write_tf_checkpoint

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tf_bundle"
DATA = ".data-00000-of-00001"
WRITABLE_DTYPES = [
    np.float16, np.float32, np.float64, ml_dtypes.bfloat16, np.int8, np.int16, np.int32,
    np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128,
]  # fmt: skip


# -- helpers ------------------------------------------------------------------------


def load_expected():
    """{checkpoint name: {tensor name: array}} as TensorFlow read them back."""
    expected = {}
    with np.load(FIXTURES / "expected.npz") as npz:
        for key in npz.files:
            if not key.endswith("|names"):
                continue
            tag = key[: -len("|names")]
            names = [name.decode("utf-8") for name in npz[key]]
            dtypes = [dtype.decode() for dtype in npz[f"{tag}|dtypes"]]
            expected[tag] = {
                name: restore(npz[f"{tag}|{i}"], dtype)
                for i, (name, dtype) in enumerate(zip(names, dtypes))
            }
    return expected


def restore(stored, dtype):
    if dtype == "bfloat16":
        return stored.view(ml_dtypes.bfloat16)
    if dtype == "string":
        values = np.empty(stored.size, object)
        values[:] = [bytes(item) for item in stored.ravel()]
        return values.reshape(stored.shape)
    assert stored.dtype == np.dtype(dtype)
    return stored


def assert_same_tensor(got, want):
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        assert got.tobytes() == want.tobytes()


def copy_checkpoint(tag, folder):
    """Copy the fixture checkpoint `tag` into `folder`; return the new prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in FIXTURES.glob(f"{tag}.*"):
        if file.name.endswith(".gz"):
            (folder / file.name[: -len(".gz")]).write_bytes(gzip.decompress(file.read_bytes()))
        else:
            shutil.copy(file, folder / file.name)
    return str(folder / tag)


def slow_crc32c(data):
    """Bit-by-bit CRC32C, independent of the module under test."""
    register = 0xFFFFFFFF
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)
        table.append(value)
    for byte in data:
        register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
    return register ^ 0xFFFFFFFF


@pytest.fixture(scope="module")
def expected():
    return load_expected()


@pytest.fixture(scope="module")
def multiblock_prefix(tmp_path_factory):
    return copy_checkpoint("multiblock.ckpt", tmp_path_factory.mktemp("multiblock"))


# -- CRC32C -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, value",
    [
        (b"", 0),
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),  # RFC 3720, B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data, value):
    assert crc.crc32c(data) == value


@pytest.mark.parametrize(
    "size", [0, 1, 3, 1023, 1024, 1025, 4097, 65536 + 7, 300_001, (1 << 20) + 13]
)
def test_crc32c_matches_slow_reference(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc.crc32c(data) == slow_crc32c(data)
    split = size // 3
    assert crc.crc32c(data[split:], crc.crc32c(data[:split])) == crc.crc32c(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.integers(0, 5000))
def test_crc32c_property(data, split):
    assert crc.crc32c(data) == slow_crc32c(data)
    assert crc.crc32c(data[split:], crc.crc32c(data[:split])) == crc.crc32c(data)


def test_crc32c_accepts_arrays_and_memoryviews():
    array = np.arange(1000, dtype=np.float32)
    assert crc.crc32c(array) == slow_crc32c(array.tobytes())
    assert crc.crc32c(memoryview(bytearray(b"123456789"))) == 0xE3069283


@given(st.integers(0, 0xFFFFFFFF))
def test_mask_round_trip(value):
    assert crc.unmask(crc.mask(value)) == value


def test_mask_values():
    assert crc.mask(0) == 0xA282EAD8
    assert crc.masked_crc32c(b"123456789") == crc.mask(0xE3069283)
    value = 0xE3069283
    assert crc.mask(value) == ((((value >> 15) | (value << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


# -- protobuf wire format --------------------------------------------------------------


@given(st.integers(-(2**63), 2**64 - 1))
def test_varint_round_trip(value):
    encoded = wire.encode_varint(value)
    decoded, end = wire.decode_varint(encoded + b"tail")
    assert end == len(encoded)
    assert decoded == value % 2**64
    assert wire.to_signed64(decoded) == (value if value < 2**63 else value - 2**64)


def test_wire_fields_round_trip():
    message = (
        wire.varint_field(1, 19)
        + wire.bytes_field(2, b"\x12\x00")
        + wire.fixed32_field(6, 0xDEADBEEF)
    )
    assert list(wire.iter_fields(message)) == [(1, 0, 19), (2, 2, b"\x12\x00"), (6, 5, 0xDEADBEEF)]
    assert wire.encode_varint(300) == b"\xac\x02"
    with pytest.raises(wire.WireFormatError):
        list(wire.iter_fields(message[:-1]))


# -- sorted table ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.binary(max_size=40), st.binary(max_size=300), max_size=80),
    st.sampled_from([64, 512, 262144]),
    st.sampled_from([1, 4, 16]),
)
def test_table_round_trip(items, block_size, restart_interval):
    items = sorted(items.items())
    table = build_table(items, block_size=block_size, restart_interval=restart_interval)
    assert read_table(table, "mem.index") == items


def test_table_rejects_unsorted_keys():
    with pytest.raises(ValueError, match="strictly increasing"):
        build_table([(b"b", b""), (b"a", b"")])


def test_snappy_block_is_reported():
    value = b"v" * 10
    table = bytearray(build_table([(b"k", value)]))
    block_size = 3 + 1 + len(value) + 8  # three varints, key, value, one restart, count
    table[block_size] = 1  # compression type: snappy
    trailer_crc = crc.masked_crc32c(table[: block_size + 1])
    table[block_size + 1 : block_size + 5] = struct.pack("<I", trailer_crc)
    with pytest.raises(CheckpointError, match=r"some/file\.index.*snappy"):
        read_table(bytes(table), "some/file.index")


# -- reading TensorFlow's files ---------------------------------------------------------


@pytest.mark.parametrize("tag", ["generic.ckpt", "strings.ckpt", "sharded.ckpt"])
def test_fixture_reads_back_exactly(tag, expected):
    with TFCheckpointReader(FIXTURES / tag) as reader:
        assert reader.keys() == sorted(expected[tag])
        for name, want in expected[tag].items():
            assert reader.shape(name) == want.shape
            assert reader.dtype(name) == want.dtype
            assert_same_tensor(reader.read(name), want)


def test_generic_fixture_contents(expected):
    tensors = expected["generic.ckpt"]
    with TFCheckpointReader(FIXTURES / "generic.ckpt") as reader:
        assert reader.shape("bert/encoder/layer_0/attention/self/query/kernel") == (8, 8)
        assert reader.shape("bert/encoder/layer_0/attention/self/key/kernel_3d") == (2, 3, 4)
        assert reader.shape("empty/zero_rows") == (0, 3)
        assert reader.read("global_step").shape == ()
        assert reader.read("global_step") == 123456789012
        assert reader.read("scalar/float") == np.float32(-2.5)
        assert reader.read("dtypes/bfloat16").dtype == ml_dtypes.bfloat16
        assert {str(tensors[name].dtype) for name in tensors} >= {
            "float16", "float32", "float64", "bfloat16", "int8", "int32", "int64", "bool",
        }  # fmt: skip


def test_strings_fixture_values():
    with TFCheckpointReader(FIXTURES / "strings.ckpt") as reader:
        tokens = [b"[CLS]", b"", b"hello", "\u00e9t\u00e9".encode()]
        assert reader.read("vocab/tokens").tolist() == tokens
        assert reader.read("vocab/scalar").shape == ()
        assert reader.read("vocab/scalar").item() == b"a single string"


def test_sharded_fixture_uses_both_shards():
    with TFCheckpointReader(FIXTURES / "sharded.ckpt") as reader:
        assert reader.num_shards == 2
        for name in reader.keys():
            reader.read(name)
        assert sorted(Path(f.name).name for f in reader._files.values()) == [
            "sharded.ckpt.data-00000-of-00002",
            "sharded.ckpt.data-00001-of-00002",
        ]


def test_multiblock_fixture(multiblock_prefix, expected):
    tensors = expected["multiblock.ckpt"]
    assert len(tensors) == 320
    index = Path(multiblock_prefix + ".index").read_bytes()
    assert len(index) > 262144 + 48  # blocks close at 256 KiB, so there are several
    with TFCheckpointReader(multiblock_prefix) as reader:
        assert reader.keys() == sorted(tensors)
        for i, name in enumerate(sorted(tensors)):
            assert_same_tensor(reader.read(name), tensors[name])
            assert reader.read(name) == i


def test_read_returns_fresh_writable_arrays():
    with TFCheckpointReader(FIXTURES / "generic.ckpt") as reader:
        first = reader.read("bert/embeddings/word_embeddings")
        original = first.copy()
        first[...] = 0
        assert_same_tensor(reader.read("bert/embeddings/word_embeddings"), original)


def test_missing_tensor_names_it():
    with TFCheckpointReader(FIXTURES / "generic.ckpt") as reader:
        with pytest.raises(CheckpointError, match=r"'no/such/tensor'.*generic\.ckpt"):
            reader.read("no/such/tensor")
        with pytest.raises(CheckpointError, match="no/such/tensor"):
            reader.shape("no/such/tensor")


def test_partitioned_variable_is_reported():
    with TFCheckpointReader(FIXTURES / "partitioned.ckpt") as reader:
        assert reader.keys() == ["sliced/kernel", "whole/bias"]
        assert reader.shape("sliced/kernel") == (4, 3)
        assert reader.read("whole/bias").tolist() == [0.0, 1.0, 2.0]
        message = r"'sliced/kernel'.*partitioned\.ckpt\.index.*partitioned"
        with pytest.raises(CheckpointError, match=message):
            reader.read("sliced/kernel")


# -- locating a checkpoint ---------------------------------------------------------------


def test_path_forms(tmp_path):
    prefix = copy_checkpoint("generic.ckpt", tmp_path / "only")
    for path in (prefix, prefix + ".index", prefix + DATA, Path(prefix), tmp_path / "only"):
        with TFCheckpointReader(path) as reader:
            assert reader.prefix == prefix
            assert reader.read("scalar/float") == np.float32(-2.5)


def test_checkpoint_state_file(tmp_path):
    folder = tmp_path / "run"
    copy_checkpoint("generic.ckpt", folder)
    copy_checkpoint("sharded.ckpt", folder)
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "sharded.ckpt"\nall_model_checkpoint_paths: "generic.ckpt"\n'
    )
    with TFCheckpointReader(folder) as reader:
        assert reader.prefix == str(folder / "sharded.ckpt")
    # A stale absolute path (folder moved) falls back to the base name.
    (folder / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/old/generic.ckpt"\n')
    with TFCheckpointReader(folder) as reader:
        assert reader.prefix == str(folder / "generic.ckpt")


def test_ambiguous_folder(tmp_path):
    copy_checkpoint("generic.ckpt", tmp_path)
    copy_checkpoint("strings.ckpt", tmp_path)
    message = rf"{re.escape(str(tmp_path))}.*generic\.ckpt\.index, strings\.ckpt\.index"
    with pytest.raises(CheckpointError, match=message):
        TFCheckpointReader(tmp_path)


def test_bad_paths(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path / 'nothing'}.index")):
        TFCheckpointReader(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(tmp_path))}.*found none"):
        TFCheckpointReader(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone.ckpt"\n')
    with pytest.raises(CheckpointError, match=r"checkpoint.*gone\.ckpt"):
        TFCheckpointReader(tmp_path)


# -- damaged files -----------------------------------------------------------------------


def test_truncated_data_file(tmp_path):
    prefix = copy_checkpoint("generic.ckpt", tmp_path)
    data = Path(prefix + DATA)
    data.write_bytes(data.read_bytes()[:-2])  # tensors are stored in name order
    with TFCheckpointReader(prefix) as reader:
        assert reader.read("global_step") == 123456789012
        message = rf"{re.escape(str(data))}.*truncated.*'scalar/float'"
        with pytest.raises(CheckpointError, match=message):
            reader.read("scalar/float")


@pytest.mark.parametrize("keep", [0, 20, 47, -1, -30, -300])
def test_truncated_index(tmp_path, keep):
    prefix = copy_checkpoint("generic.ckpt", tmp_path)
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:keep])
    with pytest.raises(CheckpointError, match=re.escape(str(index))):
        TFCheckpointReader(prefix)


def test_bad_magic(tmp_path):
    prefix = copy_checkpoint("generic.ckpt", tmp_path)
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(index))}.*magic"):
        TFCheckpointReader(prefix)


@pytest.mark.parametrize("position", [0, 100, 400, 700])
def test_corrupt_index_block(tmp_path, position):
    prefix = copy_checkpoint("generic.ckpt", tmp_path)
    index = Path(prefix + ".index")
    raw = bytearray(index.read_bytes())
    raw[position] ^= 0x40
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=re.escape(str(index))):
        TFCheckpointReader(prefix)


def test_flipped_data_byte_fails_crc(tmp_path):
    prefix = copy_checkpoint("generic.ckpt", tmp_path)
    data = Path(prefix + DATA)
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0x01  # first tensor in name order
    data.write_bytes(bytes(raw))
    name = "bert/embeddings/LayerNorm/gamma"
    with TFCheckpointReader(prefix) as reader:
        assert reader.keys()[0] == name
        with pytest.raises(CheckpointError, match=rf"CRC32C.*'{name}'.*{re.escape(str(data))}"):
            reader.read(name)
        reader.read("bert/embeddings/word_embeddings")  # the others are intact


def test_flipped_string_byte_fails_crc(tmp_path):
    prefix = copy_checkpoint("strings.ckpt", tmp_path)
    data = Path(prefix + DATA)
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0x01
    data.write_bytes(bytes(raw))
    with TFCheckpointReader(prefix) as reader:
        with pytest.raises(CheckpointError, match=rf"'vocab/tokens'.*{re.escape(str(data))}"):
            reader.read("vocab/tokens")


def test_missing_shard(tmp_path):
    prefix = copy_checkpoint("sharded.ckpt", tmp_path)
    missing = Path(prefix + ".data-00001-of-00002")
    missing.unlink()
    with TFCheckpointReader(prefix) as reader:
        reader.read("bert/pooler/dense/kernel")  # in shard 0
        message = rf"{re.escape(str(missing))}.*missing.*'bert/pooler/dense/bias'"
        with pytest.raises(CheckpointError, match=message):
            reader.read("bert/pooler/dense/bias")


def test_unsupported_dtype(tmp_path):
    header = wire.varint_field(1, 1) + wire.bytes_field(3, wire.varint_field(1, 1))
    entry = wire.varint_field(1, 20) + wire.bytes_field(2, b"")  # DT_RESOURCE scalar
    prefix = tmp_path / "resource.ckpt"
    Path(f"{prefix}.index").write_bytes(build_table([(b"", header), (b"handle", entry)]))
    Path(f"{prefix}{DATA}").write_bytes(b"")
    with TFCheckpointReader(prefix) as reader:
        assert reader.shape("handle") == ()
        message = r"'handle'.*resource\.ckpt\.index.*unsupported dtype resource"
        with pytest.raises(CheckpointError, match=message):
            reader.read("handle")


# -- writing -----------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["generic.ckpt", "multiblock.ckpt"])
def test_writer_is_byte_identical_to_tensorflow(tmp_path, tag):
    original = copy_checkpoint(tag, tmp_path / "tf")
    with TFCheckpointReader(original) as reader:
        tensors = {name: reader.read(name) for name in reader.keys()}
    ours = str(tmp_path / "ours" / tag)
    write_tf_checkpoint(ours, tensors)
    for suffix in (".index", DATA):
        assert Path(ours + suffix).read_bytes() == Path(original + suffix).read_bytes()


def random_tensor(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


tensor_specs = st.tuples(
    st.sampled_from(WRITABLE_DTYPES),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    st.integers(0, 2**32 - 1),
)
tensor_names = st.text(min_size=1, max_size=60).filter(lambda name: not name.startswith("\0"))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(tensor_names, tensor_specs, min_size=1, max_size=12))
def test_write_read_round_trip(specs):
    tensors = {name: random_tensor(*spec) for name, spec in specs.items()}
    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "sub", "model.ckpt")
        write_tf_checkpoint(prefix, tensors)
        with TFCheckpointReader(prefix) as reader:
            assert reader.keys() == sorted(tensors, key=lambda name: name.encode("utf-8"))
            for name, want in tensors.items():
                assert reader.shape(name) == want.shape
                assert_same_tensor(reader.read(name), want)


def test_writer_spans_several_index_blocks(tmp_path):
    tensors = {f"layer_{i:05d}/{'kernel' * 20}": np.full(2, i, np.int16) for i in range(5000)}
    write_tf_checkpoint(tmp_path / "many.ckpt", tensors)
    assert os.path.getsize(tmp_path / "many.ckpt.index") > 2 * 262144
    with TFCheckpointReader(tmp_path / "many.ckpt") as reader:
        assert reader.keys() == sorted(tensors)
        assert reader.read(f"layer_04999/{'kernel' * 20}").tolist() == [4999, 4999]


def test_writer_stores_big_endian_input_little_endian(tmp_path):
    write_tf_checkpoint(tmp_path / "be.ckpt", {"x": np.arange(3, dtype=">i4")})
    assert Path(f"{tmp_path}/be.ckpt{DATA}").read_bytes() == np.arange(3, dtype="<i4").tobytes()
    with TFCheckpointReader(tmp_path / "be.ckpt") as reader:
        assert reader.read("x").tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"": np.zeros(1)}, "non-empty"),
        ({"s": np.array([b"a"], object)}, "cannot be written"),
        ({"s": np.array(["text"])}, "cannot be written"),
    ],
)
def test_writer_rejects(tmp_path, tensors, message):
    with pytest.raises(ValueError, match=message):
        write_tf_checkpoint(tmp_path / "bad.ckpt", tensors)


def test_close_twice():
    reader = TFCheckpointReader(FIXTURES / "generic.ckpt")
    reader.read("global_step")
    reader.close()
    reader.close()
