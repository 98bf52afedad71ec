"""TorchBinReader against torch's own `torch.load`, bit for bit.

torch is used here only to write files and to load the reference values; the
reader itself must work without it (see `test_reader_does_not_need_torch`).
"""

import os
import pickle
import shlex
import subprocess
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.torch_bin import TorchBinReader

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

torch = pytest.importorskip("torch")

FORMATS = ("zip", "legacy")

# Dtypes with a classic typed storage: both layouts, and torch loads both.
TYPED_DTYPES = [
    torch.float32,
    torch.float16,
    torch.float64,
    torch.bfloat16,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.complex64,
    torch.complex128,
]
# Newer dtypes, pickled with an untyped storage and a dtype global.
UNTYPED_DTYPES = [torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn, torch.float8_e5m2]

# torch dtypes that `Tensor.numpy()` refuses: (same-size torch dtype, numpy dtype).
_NUMPY_VIEWS = {
    torch.bfloat16: (torch.int16, ml_dtypes.bfloat16),
    torch.float8_e4m3fn: (torch.uint8, ml_dtypes.float8_e4m3fn),
    torch.float8_e5m2: (torch.uint8, ml_dtypes.float8_e5m2),
    torch.uint16: (torch.int16, np.uint16),
    torch.uint32: (torch.int32, np.uint32),
    torch.uint64: (torch.int64, np.uint64),
}


def to_numpy(tensor):
    tensor = tensor.detach().contiguous()
    if tensor.dtype in _NUMPY_VIEWS:
        same_size, numpy_dtype = _NUMPY_VIEWS[tensor.dtype]
        return tensor.view(same_size).numpy().view(numpy_dtype)
    return tensor.numpy()


def assert_same(actual, tensor):
    """Same dtype, shape and bytes (so NaN, -0.0 and bool compare exactly)."""
    expected = to_numpy(tensor)
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


def save(state, path, fmt="zip"):
    torch.save(state, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


def check_against_torch(path, **reader_options):
    """Every tensor the reader lists equals torch.load's, and the names agree."""
    loaded = torch.load(path, weights_only=True)
    tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    with TorchBinReader(path, **reader_options) as reader:
        assert reader.keys() == list(tensors)
        for name, tensor in tensors.items():
            assert reader.shape(name) == tuple(tensor.shape)
            assert_same(reader.read(name), tensor)
    return tensors


def sample(shape, dtype, seed=0):
    """Deterministic values covering the dtype's range, with float specials."""
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    if dtype.is_complex:
        return torch.randn(shape, generator=gen, dtype=dtype)
    if dtype.is_floating_point:
        values = torch.randn(shape, generator=gen) * 100
        specials = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-3])
        flat = values.flatten()
        n = min(flat.numel(), specials.numel())
        flat[:n] = specials[:n]
        return flat.reshape(shape).to(dtype)
    return torch.randint(-(2**31), 2**31 - 1, shape, generator=gen, dtype=torch.int64).to(dtype)


# ---------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", TYPED_DTYPES, ids=str)
def test_every_typed_dtype_matches_torch(tmp_path, fmt, dtype):
    state = {"x": sample((3, 5), dtype), "y": sample((7,), dtype, seed=1)}
    tensors = check_against_torch(save(state, tmp_path / "m.bin", fmt))
    assert tensors.keys() == {"x", "y"}


@pytest.mark.parametrize("dtype", UNTYPED_DTYPES, ids=str)
def test_newer_dtypes_match_torch(tmp_path, dtype):
    check_against_torch(save({"x": sample((4, 3), dtype)}, tmp_path / "m.bin"))


@pytest.mark.parametrize("dtype", UNTYPED_DTYPES, ids=str)
def test_newer_dtypes_in_legacy_layout(tmp_path, dtype):
    # torch itself cannot load these back from the legacy layout: compare
    # with the tensor that was saved.
    tensor = sample((4, 3), dtype)
    path = save({"x": tensor, "t": tensor.t()}, tmp_path / "m.bin", "legacy")
    with TorchBinReader(path) as reader:
        assert_same(reader.read("x"), tensor)
        assert_same(reader.read("t"), tensor.t())


def test_known_values_literally(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    path = save(
        {"t": base.t(), "rows": base[1:], "bf": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)},
        tmp_path / "m.bin",
    )
    with TorchBinReader(path) as reader:
        np.testing.assert_array_equal(reader.read("t"), np.arange(12.0).reshape(3, 4).T)
        np.testing.assert_array_equal(reader.read("rows"), [[4, 5, 6, 7], [8, 9, 10, 11]])
        assert reader.read("bf").dtype == ml_dtypes.bfloat16
        assert reader.read("bf").astype(np.float32).tolist() == [1.5, -2.0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_scalar_and_empty(tmp_path, fmt):
    state = {
        "scalar": torch.tensor(3.25),
        "int_scalar": torch.tensor(-7, dtype=torch.int64),
        "empty": torch.zeros(0),
        "empty_2d": torch.ones(0, 4, dtype=torch.int32),
    }
    check_against_torch(save(state, tmp_path / "m.bin", fmt))
    with TorchBinReader(tmp_path / "m.bin") as reader:
        assert reader.shape("scalar") == ()
        assert reader.read("scalar").item() == 3.25
        assert reader.shape("empty_2d") == (0, 4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_offsets_and_strides(tmp_path, fmt):
    base = sample((4, 6), torch.float32)
    cube = sample((2, 3, 4), torch.int16)
    state = {
        "transposed": base.t(),
        "rows_slice": base[1:3],
        "column": base[:, 2],
        "every_other": base[:, 1::2],
        "permuted": cube.permute(2, 0, 1),
        "broadcast": torch.arange(3.0).expand(4, 3),  # stride 0
    }
    assert not state["transposed"].is_contiguous()
    assert state["rows_slice"].storage_offset() == 6
    check_against_torch(save(state, tmp_path / "m.bin", fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_tied_names_share_one_storage(tmp_path, fmt):
    shared = sample((5, 4), torch.float32)
    state = {"embeddings": shared, "decoder": shared, "decoder_t": shared.t(), "tail": shared[3:]}
    path = save(state, tmp_path / "m.bin", fmt)
    if fmt == "zip":
        storages = [n for n in zipfile.ZipFile(path).namelist() if "/data/" in n]
        assert len(storages) == 1  # the file really holds a single shared storage
    check_against_torch(path)


def test_read_returns_fresh_arrays(tmp_path):
    path = save({"w": torch.ones(3)}, tmp_path / "m.bin")
    with TorchBinReader(path) as reader:
        first = reader.read("w")
        first[:] = 5
        assert reader.read("w").tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_and_skipped_plain_values(tmp_path, fmt):
    state = {
        "weight": torch.nn.Parameter(sample((3, 2), torch.float32)),
        "frozen": torch.nn.Parameter(sample((2,), torch.bfloat16), requires_grad=False),
        "step": 10,
        "name": "bert",
        "blob": b"\x00\xffraw",
        "plain": sample((2, 2), torch.int64),
    }
    path = save(state, tmp_path / "m.bin", fmt)
    with TorchBinReader(path) as reader:
        assert reader.keys() == ["weight", "frozen", "plain"]
        for name in reader.keys():
            assert_same(reader.read(name), state[name])
    check_against_torch(path)


def test_tensor_with_python_attributes(tmp_path):
    tensor = sample((2, 3), torch.float32)
    tensor.note = "extra attribute"  # pickled through _rebuild_from_type_v2
    check_against_torch(save({"x": tensor}, tmp_path / "m.bin"))


def test_module_state_dict(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Embedding(5, 3)
    )
    path = save(model.state_dict(), tmp_path / "m.bin")
    tensors = check_against_torch(path)
    assert list(tensors) == list(model.state_dict())


# ---------------------------------------------------------------------------
# Nested state dicts


@pytest.mark.parametrize("outer", ["state_dict", "model"])
def test_nested_state_dict_is_flattened(tmp_path, outer):
    inner = {"a.weight": sample((2, 3), torch.float32), "a.bias": sample((3,), torch.float16)}
    path = save({outer: inner, "epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "m.bin")
    with TorchBinReader(path) as reader:
        assert reader.keys() == ["a.weight", "a.bias"]
        for name, tensor in inner.items():
            assert_same(reader.read(name), tensor)


def test_ambiguous_nesting_needs_a_key(tmp_path):
    model = {"w": sample((2,), torch.float32)}
    ema = {"w": sample((2,), torch.float32, seed=5)}
    path = save({"model": model, "ema": ema}, tmp_path / "m.bin")
    with pytest.raises(CheckpointError, match="m.bin.*several keys"):
        TorchBinReader(path)
    with TorchBinReader(path, nested_key="ema") as reader:
        assert_same(reader.read("w"), ema["w"])


def test_top_level_tensors_win_over_nested(tmp_path):
    top = sample((2,), torch.float32)
    path = save({"w": top, "extra": {"v": sample((3,), torch.float32)}}, tmp_path / "m.bin")
    with TorchBinReader(path) as reader:
        assert reader.keys() == ["w"]
        assert_same(reader.read("w"), top)


def test_file_without_tensors(tmp_path):
    path = save({"epoch": 1, "lr": 0.5}, tmp_path / "m.bin")
    with pytest.raises(CheckpointError, match="m.bin holds no tensors"):
        TorchBinReader(path)


# ---------------------------------------------------------------------------
# A real transformers model


def test_tiny_transformers_bert(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
    )
    model = transformers.BertForPreTraining(config)
    # transformers 5 writes only safetensors from save_pretrained; a
    # pytorch_model.bin has always been torch.save(model.state_dict()).
    path = save(model.state_dict(), tmp_path / "pytorch_model.bin")
    tensors = check_against_torch(path)
    state = model.state_dict()
    assert list(tensors) == list(state)
    with TorchBinReader(path) as reader:
        for name, tensor in state.items():
            assert_same(reader.read(name), tensor)
        tied = reader.read("cls.predictions.decoder.weight")
        np.testing.assert_array_equal(tied, reader.read("bert.embeddings.word_embeddings.weight"))


# ---------------------------------------------------------------------------
# Security: a crafted data.pkl must be refused before any of it runs


def write_archive(path, data_pkl, storages=None, top="archive"):
    """A zip laid out like torch.save's, with our own data.pkl."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{top}/data.pkl", data_pkl)
        archive.writestr(f"{top}/byteorder", "little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"{top}/data/{key}", raw)
        archive.writestr(f"{top}/version", "3\n")
    return path


def payloads(marker):
    """Protocol-0 pickles that create `marker` when unpickled normally."""
    shell = f"touch {shlex.quote(str(marker))}".encode()
    python = f"open({str(marker)!r}, 'w').close()".encode()
    return {
        "os.system": b"cos\nsystem\n(V" + shell + b"\ntR.",
        "builtins.eval": b"cbuiltins\neval\n(V" + python + b"\ntR.",
        # The same call hidden as one value of an otherwise plain dict.
        "builtins.exec": b"(dVsafe\nI1\nsVevil\ncbuiltins\nexec\n(V" + python + b"\ntRs.",
    }


@pytest.mark.parametrize("forbidden", ["os.system", "builtins.eval", "builtins.exec"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, forbidden):
    marker = tmp_path / "pwned"
    payload = payloads(marker)[forbidden]
    path = write_archive(tmp_path / "pytorch_model.bin", payload)
    with pytest.raises(CheckpointError) as raised:
        TorchBinReader(path)
    message = str(raised.value)
    assert "refusing to load" in message and "pytorch_model.bin" in message
    assert repr(forbidden) in message
    assert not marker.exists()
    # Control: the payload is live, plain pickle runs it.
    pickle.loads(payload)
    assert marker.exists()


def test_malicious_pickle_in_legacy_layout(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "old.bin"
    # torch.save streams start with a protocol-2 header, so the reader treats
    # this as a legacy file and unpickles it.
    path.write_bytes(b"\x80\x02" + payloads(marker)["builtins.eval"])
    with pytest.raises(CheckpointError, match="old.bin.*'builtins.eval'"):
        TorchBinReader(path)
    assert not marker.exists()


def test_unknown_storage_type(tmp_path):
    good = save({"x": torch.ones(2)}, tmp_path / "good.bin")
    with zipfile.ZipFile(good) as archive:
        data_pkl = archive.read("good/data.pkl")
    bad_pkl = data_pkl.replace(b"torch\nFloatStorage\n", b"torch\nQUInt8Storage\n")
    assert bad_pkl != data_pkl
    path = write_archive(tmp_path / "bad.bin", bad_pkl, {"0": b"\0" * 8})
    with pytest.raises(CheckpointError, match="bad.bin.*'torch.QUInt8Storage'.*storage type"):
        TorchBinReader(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_torchscript_archive_is_refused(tmp_path):
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    path = tmp_path / "scripted.pt"
    scripted.save(str(path))
    with pytest.raises(CheckpointError, match="scripted.pt.*TorchScript"):
        TorchBinReader(path)


# ---------------------------------------------------------------------------
# Broken files


def test_truncated_zip(tmp_path):
    path = save({"w": sample((64, 64), torch.float32)}, tmp_path / "cut.bin")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="cut.bin.*truncated"):
        TorchBinReader(path)


def test_truncated_legacy_file(tmp_path):
    path = save({"w": sample((64, 64), torch.float32)}, tmp_path / "cut.bin", "legacy")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(CheckpointError, match="cut.bin.*truncated"):
        TorchBinReader(path)


@pytest.mark.parametrize("content", [b"hello, not a checkpoint", b""])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "junk.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.bin is not a PyTorch checkpoint"):
        TorchBinReader(path)


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="plain.pkl is a pickle but not a PyTorch checkpoint"):
        TorchBinReader(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*nowhere.bin"):
        TorchBinReader(tmp_path / "nowhere.bin")


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/version", "3\n")
    with pytest.raises(CheckpointError, match="other.zip.*without data.pkl"):
        TorchBinReader(path)


def rewrite_archive(src, dst, change):
    """Copies a zip, passing each entry's bytes through change(name, data)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            new.writestr(info.filename, change(info.filename, old.read(info)))
    return dst


def test_storage_shorter_than_tensor(tmp_path):
    good = save({"w": sample((4, 4), torch.float32)}, tmp_path / "good.bin")
    path = rewrite_archive(
        good,
        tmp_path / "short.bin",
        lambda name, data: data[:20] if name.endswith("/data/0") else data,
    )
    with TorchBinReader(path) as reader:
        assert reader.shape("w") == (4, 4)  # metadata still reads
        with pytest.raises(CheckpointError, match="short.bin.*'w' needs 64 bytes.*only 20"):
            reader.read("w")


def test_missing_storage_entry(tmp_path):
    good = save({"w": torch.ones(3)}, tmp_path / "good.bin")
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(tmp_path / "gap.bin", "w") as new:
        for info in old.infolist():
            if not info.filename.endswith("/data/0"):
                new.writestr(info.filename, old.read(info))
    with TorchBinReader(tmp_path / "gap.bin") as reader:
        with pytest.raises(CheckpointError, match="gap.bin.*missing"):
            reader.read("w")


def test_unknown_name(tmp_path):
    path = save({"w": torch.ones(3)}, tmp_path / "m.bin")
    with TorchBinReader(path) as reader:
        assert "w" in reader and "v" not in reader
        with pytest.raises(CheckpointError, match="'v' not found"):
            reader.read("v")
        with pytest.raises(CheckpointError, match="'v' not found"):
            reader.shape("v")


# ---------------------------------------------------------------------------
# Layout details


def test_big_endian_archive(tmp_path):
    state = {
        "f32": sample((3, 2), torch.float32),
        "i64": sample((4,), torch.int64),
        "bf16": sample((5,), torch.bfloat16),
        "c64": sample((2,), torch.complex64),
        "u8": sample((3,), torch.uint8),
    }
    good = save(state, tmp_path / "little.bin")
    # Storage keys follow pickling order: key i holds the i-th tensor.
    swap_units = {"0": 4, "1": 8, "2": 2, "3": 4, "4": 1}

    def to_big_endian(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        key = name.rsplit("/data/", 1)[-1]
        if "/data/" in name and swap_units[key] > 1:
            return (
                np.frombuffer(data, dtype=f"<u{swap_units[key]}")
                .astype(f">u{swap_units[key]}")
                .tobytes()
            )
        return data

    path = rewrite_archive(good, tmp_path / "big.bin", to_big_endian)
    assert torch.load(path, weights_only=True)["i64"].tolist() == state["i64"].tolist()
    check_against_torch(path)


def write_legacy_with_storage_view(path):
    """A legacy stream whose tensor sits on a view (offset 2) of a 6-float storage.

    torch < 0.4 wrote such storage views; torch today never does, so the
    object pickle is written by hand.
    """
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    storage_ref = b"(Vstorage\nctorch\nFloatStorage\nVroot\nVcpu\nI6\n(Vview\nI2\nI4\nttQ"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage_ref + b"I1\n(I3\nt(I1\nt\x89}tR"
    state = b"\x80\x02}Vw\n" + rebuild + b"s."
    with open(path, "wb") as out:
        for value in header:
            out.write(pickle.dumps(value, protocol=2))
        out.write(state)
        out.write(pickle.dumps(["root"], protocol=2))
        out.write((6).to_bytes(8, "little") + np.arange(6, dtype="<f4").tobytes())
    return path


def test_legacy_storage_view(tmp_path):
    path = write_legacy_with_storage_view(tmp_path / "old.bin")
    # torch's weights-only loader rejects the text opcodes; this file is our own.
    assert torch.load(path, weights_only=False)["w"].tolist() == [3.0, 4.0, 5.0]
    with TorchBinReader(path) as reader:
        assert reader.read("w").tolist() == [3.0, 4.0, 5.0]


def test_archive_with_any_top_folder_name(tmp_path):
    good = save({"w": sample((3,), torch.float32)}, tmp_path / "good.bin")
    path = tmp_path / "renamed.bin"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            new.writestr("some_other_name/" + info.filename.split("/", 1)[1], old.read(info))
    check_against_torch(path)


def test_reader_does_not_need_torch(tmp_path):
    tensor = sample((2, 3), torch.bfloat16)
    path = save({"w": tensor}, tmp_path / "m.bin")
    expected = to_numpy(tensor).astype(np.float32).tolist()
    # The package needs a Keras backend; the reader itself must not need torch.
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "from nlp4keras.checkpoints.torch_bin import TorchBinReader\n"
        f"print(TorchBinReader({str(path)!r}).read('w').astype('float32').tolist())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


# ---------------------------------------------------------------------------
# Property: any shape, dtype and view round-trips through either layout


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(TYPED_DTYPES + UNTYPED_DTYPES),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=4),
    seed=st.integers(0, 2**16),
    permute=st.randoms(use_true_random=False),
    skip=st.integers(0, 2),
    fmt=st.sampled_from(FORMATS),
)
def test_random_tensors_round_trip(tmp_path_factory, dtype, shape, seed, permute, skip, fmt):
    tensor = sample(tuple(shape), dtype, seed)
    order = list(range(len(shape)))
    permute.shuffle(order)
    view = tensor.permute(order)
    if view.dim() and view.shape[0] > skip:
        view = view[skip:]  # a storage offset
    state = {"base": tensor, "view": view}
    path = save(state, tmp_path_factory.mktemp("prop") / "m.bin", fmt)
    if fmt == "zip" or dtype in TYPED_DTYPES:
        check_against_torch(path)
    with TorchBinReader(path) as reader:
        for name, value in state.items():
            assert reader.shape(name) == tuple(value.shape)
            assert_same(reader.read(name), value)
