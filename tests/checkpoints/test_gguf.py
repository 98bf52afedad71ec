"""GGUFCheckpointReader against transformers' own GGUF loading, value for value.

transformers (`LlamaForCausalLM.from_pretrained(folder, gguf_file=...)`)
dequantises a GGUF file with the same `gguf` package and undoes llama.cpp's
query/key row order itself; its float32 state dict is the reference, compared
with tolerance 0. Files: tiny Llama GGUFs written here with `gguf.GGUFWriter`
(2 layers, tensors in F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0), and the
real SmolLM2-135M-Instruct Q4_1 file (fetched by `make assets`), all 272 of its
tensors. Then hostile files: truncated, not GGUF, another architecture.
"""

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlp4keras.checkpoints import open_checkpoint
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.gguf_reader import GGUFCheckpointReader

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
Q = gguf.GGMLQuantizationType

SMOLLM2 = Path(__file__).resolve().parents[2] / ".assets" / "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

TINY = dict(hidden=64, heads=4, kv_heads=2, head_dim=16, ffn=96, vocab=128, layers=2)
# GGUF leaf name -> (HF shape as a function of TINY, stored type).
TINY_LAYER = {
    "attn_norm": (lambda t: (t["hidden"],), Q.F32),
    "attn_q": (lambda t: (t["heads"] * t["head_dim"], t["hidden"]), Q.Q8_0),
    "attn_k": (lambda t: (t["kv_heads"] * t["head_dim"], t["hidden"]), Q.Q4_1),
    "attn_v": (lambda t: (t["kv_heads"] * t["head_dim"], t["hidden"]), Q.F16),
    "attn_output": (lambda t: (t["hidden"], t["heads"] * t["head_dim"]), Q.Q4_0),
    "ffn_norm": (lambda t: (t["hidden"],), Q.F32),
    "ffn_gate": (lambda t: (t["ffn"], t["hidden"]), Q.Q5_0),
    "ffn_up": (lambda t: (t["ffn"], t["hidden"]), Q.BF16),
    "ffn_down": (lambda t: (t["hidden"], t["ffn"]), Q.Q5_1),
}


def write_tiny_gguf(
    path, architecture="llama", tied=False, extra=(), seed=0, tokenizer=False, edit=None
):
    """A tiny Llama GGUF with random weights; `extra` adds (name, array)
    tensors, `edit(writer)` more metadata, `edit=False` no head count."""
    t = TINY
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(t["layers"])
    writer.add_context_length(256)
    writer.add_embedding_length(t["hidden"])
    writer.add_feed_forward_length(t["ffn"])
    if edit is not False:
        writer.add_head_count(t["heads"])
    if edit:
        edit(writer)
    writer.add_head_count_kv(t["kv_heads"])
    writer.add_rope_freq_base(500000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_dimension_count(t["head_dim"])
    writer.add_vocab_size(t["vocab"])
    if tokenizer:
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list([f"t{i}" for i in range(t["vocab"])])
        writer.add_bos_token_id(3)
        writer.add_eos_token_id(4)

    def add(name, shape, qtype):
        values = rng.standard_normal(shape).astype(np.float32) * 0.1
        if name.endswith("norm.weight"):
            values += 1.0
        if qtype == Q.F32:
            writer.add_tensor(name, values)
        elif qtype == Q.F16:
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)

    add("token_embd.weight", (t["vocab"], t["hidden"]), Q.Q8_0)
    for i in range(t["layers"]):
        for leaf, (shape, qtype) in TINY_LAYER.items():
            add(f"blk.{i}.{leaf}.weight", shape(t), qtype)
    add("output_norm.weight", (t["hidden"],), Q.F32)
    if not tied:
        add("output.weight", (t["vocab"], t["hidden"]), Q.F32)
    for name, values in extra:
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def transformers_load(path):
    """(float32 state dict as numpy, config) from transformers' GGUF loading."""
    from transformers import LlamaForCausalLM

    path = Path(path)
    model = LlamaForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    return state, model.config


def check_equal_to_transformers(reader, state, tied):
    expected_keys = set(state) - ({"lm_head.weight"} if tied else set())
    assert set(reader.keys()) == expected_keys
    for name in reader.keys():
        ours = reader.read(name)
        assert ours.dtype == np.float32 and reader.dtype(name) == np.float32, name
        assert ours.shape == reader.shape(name) == state[name].shape, name
        np.testing.assert_array_equal(ours, state[name], err_msg=name)  # tolerance 0


def check_config_matches(ours, config):
    """Our hf_config against transformers' config of the same file."""
    from transformers import LlamaConfig

    for key in (
        "model_type",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "tie_word_embeddings",
        "hidden_act",
        "attention_bias",
        "mlp_bias",
    ):
        assert ours[key] == getattr(config, key), key
    # GGUF stores float32: ours is the shortest decimal of that float32
    # (1e-05), transformers' the float32 widened (9.999999747378752e-06).
    assert np.float32(ours["rms_norm_eps"]) == np.float32(config.rms_norm_eps)
    assert np.float32(ours["rope_theta"]) == np.float32(rope_theta(config))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in ours:
            assert ours[key] == getattr(config, key), key
    # The dict builds the same config in transformers itself.
    rebuilt = LlamaConfig(**ours)
    for key in ("num_key_value_heads", "head_dim", "rms_norm_eps", "tie_word_embeddings"):
        assert getattr(rebuilt, key) == ours[key], key
    assert rope_theta(rebuilt) == ours["rope_theta"]


def rope_theta(config):
    """transformers >= 5 keeps rope_theta in `rope_parameters`, older ones on the config."""
    parameters = getattr(config, "rope_parameters", None) or {}
    return parameters.get("rope_theta", getattr(config, "rope_theta", None))


# -- tiny files ----------------------------------------------------------------


@pytest.fixture(scope="module", params=["untied", "tied"])
def tiny(request, tmp_path_factory):
    tied = request.param == "tied"
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", tied=tied)
    state, config = transformers_load(path)
    return path, state, config, tied


def test_tiny_tensors_equal_transformers(tiny):
    path, state, _, tied = tiny
    with open_checkpoint(path) as reader:
        assert isinstance(reader, GGUFCheckpointReader)
        check_equal_to_transformers(reader, state, tied)
        assert reader.unmapped == ()


def test_tiny_hf_config_matches_transformers(tiny):
    path, _, config, tied = tiny
    with GGUFCheckpointReader(path) as reader:
        ours = reader.hf_config()
    assert ours["tie_word_embeddings"] is tied
    assert ours["rms_norm_eps"] == 1e-6 and ours["rope_theta"] == 500000.0
    assert "bos_token_id" not in ours  # the file has no tokenizer metadata
    check_config_matches(ours, config)


def test_tiny_names_types_and_layout(tiny):
    path, _, _, _ = tiny
    with GGUFCheckpointReader(path) as reader:
        name = "model.layers.1.self_attn.q_proj.weight"
        assert reader.source_name(name) == "blk.1.attn_q.weight"
        assert reader.source_name("model.norm.weight") == "output_norm.weight"
        assert reader.source_name("model.embed_tokens.weight") == "token_embd.weight"
        assert reader.ggml_type(name) == "Q8_0"
        assert reader.ggml_type("model.layers.0.mlp.up_proj.weight") == "BF16"
        assert reader.shape("model.layers.0.mlp.down_proj.weight") == (64, 96)  # [out, in]
        assert reader.shape("model.layers.0.self_attn.k_proj.weight") == (32, 64)


def test_query_and_key_rows_are_reordered(tiny):
    """The stored rows differ from HF's for q and k (so the comparison above
    would catch a missing or wrong reorder) and equal them for v."""
    path, state, _, _ = tiny
    file = gguf.GGUFReader(str(path))
    stored = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in file.tensors}
    for leaf, hf in (("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj")):
        raw = stored[f"blk.0.{leaf}.weight"]
        expected = state[f"model.layers.0.self_attn.{hf}.weight"]
        assert raw.shape == expected.shape
        assert np.array_equal(raw, expected) == (leaf == "attn_v"), leaf
        # Same rows, other order.
        np.testing.assert_array_equal(np.sort(raw, axis=0), np.sort(expected, axis=0))


def test_read_gives_a_fresh_writable_array(tiny):
    path, state, _, _ = tiny
    with GGUFCheckpointReader(path) as reader:
        for name in ("model.norm.weight", "model.layers.0.self_attn.q_proj.weight"):
            first = reader.read(name)
            assert first.flags.writeable and first.flags.c_contiguous
            first[...] = 7.0
            np.testing.assert_array_equal(reader.read(name), state[name])


def test_unmapped_tensors_are_listed_not_loaded(tmp_path):
    extra = [("rope_freqs.weight", np.ones(8, np.float32)), ("blk.0.foo.weight", np.ones(4))]
    path = write_tiny_gguf(tmp_path / "extra.gguf", extra=extra)
    with GGUFCheckpointReader(path) as reader:
        assert reader.unmapped == ("rope_freqs.weight", "blk.0.foo.weight")
        assert not any("rope_freqs" in name or "foo" in name for name in reader.keys())


def test_tokenizer_ids_reach_the_config(tmp_path):
    path = write_tiny_gguf(tmp_path / "tok.gguf", tokenizer=True)
    with GGUFCheckpointReader(path) as reader:
        config = reader.hf_config()
        assert reader.metadata["tokenizer.ggml.model"] == "gpt2"
        assert "tokenizer.ggml.tokens" not in reader.metadata
    assert config["bos_token_id"] == 3 and config["eos_token_id"] == 4
    assert "pad_token_id" not in config


def test_missing_tensor_and_closed_reader(tiny):
    path = tiny[0]
    reader = GGUFCheckpointReader(path)
    with pytest.raises(CheckpointError, match="'nope' not found in checkpoint .*tiny.gguf"):
        reader.read("nope")
    reader.close()
    reader.close()  # twice is fine
    with pytest.raises(CheckpointError, match="is closed"):
        reader.read("model.norm.weight")


def test_missing_gguf_package(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(ImportError, match=re.escape("pip install gguf")):
        open_checkpoint(tiny[0])


def test_reader_needs_neither_torch_nor_transformers(tiny):
    path, state, _, _ = tiny
    name = "model.layers.1.self_attn.k_proj.weight"
    script = (
        "import sys; sys.modules['torch'] = sys.modules['transformers'] = None\n"
        "from nlp4keras.checkpoints.gguf_reader import GGUFCheckpointReader\n"
        f"print(GGUFCheckpointReader({str(path)!r}).read({name!r}).tolist())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(state[name].tolist())


# -- the real SmolLM2-135M-Instruct file ---------------------------------------


@pytest.fixture(scope="module")
def smollm2(smollm2_reference):
    path, model, _ = smollm2_reference
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    return path, state, model.config


@pytest.mark.backend_free
def test_smollm2_all_tensors_equal_transformers(smollm2):
    """All 272 tensors (30 layers x 9, embeddings, final norm), tolerance 0."""
    path, state, _ = smollm2
    with open_checkpoint(path) as reader:
        assert len(reader.keys()) == 30 * 9 + 2
        check_equal_to_transformers(reader, state, tied=True)
        assert reader.ggml_type("model.embed_tokens.weight") == "Q8_0"
        assert reader.ggml_type("model.layers.29.mlp.down_proj.weight") == "Q4_1"
        assert reader.ggml_type("model.layers.0.input_layernorm.weight") == "F32"


@pytest.mark.backend_free
def test_smollm2_hf_config(smollm2):
    path, _, config = smollm2
    with GGUFCheckpointReader(path) as reader:
        ours = reader.hf_config()
    expected = {
        "model_type": "llama",
        "num_hidden_layers": 30,
        "hidden_size": 576,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "intermediate_size": 1536,
        "vocab_size": 49152,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "max_position_embeddings": 8192,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    assert {key: ours[key] for key in expected} == expected
    check_config_matches(ours, config)


# -- hostile files -------------------------------------------------------------


@contextlib.contextmanager
def fails(pattern, path):
    """pytest.raises(CheckpointError, match=pattern), the type exactly
    CheckpointError (not a numpy or struct error) and `path` in the message."""
    with pytest.raises(CheckpointError, match=pattern) as info:
        yield info
    assert type(info.value) is CheckpointError, repr(info.value)
    assert str(path) in str(info.value), str(info.value)


def read_all(path):
    with open_checkpoint(path) as reader:
        return {name: reader.read(name) for name in reader.keys()}


def test_truncated_files(tmp_path):
    whole = write_tiny_gguf(tmp_path / "whole.gguf").read_bytes()
    file = gguf.GGUFReader(str(tmp_path / "whole.gguf"))
    data_start = file.data_offset
    del file
    # In the magic, the counts, the metadata, the tensor infos, the data.
    cuts = [2, 6, 20, 60, data_start // 2, data_start - 3, data_start + 100, len(whole) - 1]
    for cut in cuts:
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(whole[:cut])
        with fails("truncated|not a GGUF file", path):
            read_all(path)


def test_not_a_gguf_file(tmp_path):
    for name, content in [
        ("text.gguf", b"hello, this is not a model\n" * 10),
        ("empty.gguf", b""),
        ("safetensors.gguf", (8).to_bytes(8, "little") + b"{}      "),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        with fails("is not a GGUF file", path):
            read_all(path)
    with fails("GGUF file not found", tmp_path / "absent.gguf"):
        GGUFCheckpointReader(tmp_path / "absent.gguf")


def test_bad_header_after_the_magic(tmp_path):
    whole = bytearray(write_tiny_gguf(tmp_path / "whole.gguf").read_bytes())
    whole[4:8] = (99).to_bytes(4, "little")  # an unknown version
    path = tmp_path / "version.gguf"
    path.write_bytes(bytes(whole))
    with fails("corrupt or truncated GGUF file", path):
        read_all(path)


def test_unsupported_architecture(tmp_path):
    path = write_tiny_gguf(tmp_path / "qwen.gguf", architecture="qwen2")
    with fails(r"holds architecture 'qwen2'.*supported: 'llama'", path):
        open_checkpoint(path)


def test_metadata_nlp4keras_cannot_use(tmp_path):
    path = write_tiny_gguf(tmp_path / "heads.gguf", edit=False)
    with fails("has no 'llama.attention.head_count' metadata", path):
        open_checkpoint(path)
    path = write_tiny_gguf(
        tmp_path / "yarn.gguf", edit=lambda w: w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    )
    with GGUFCheckpointReader(path) as reader:
        reader.read("model.layers.0.self_attn.q_proj.weight")  # the tensors still read
        with fails("rope scaling 'yarn' is not supported yet", path):
            reader.hf_config()


def _header(tensor_count, pairs):
    """A GGUF v3 header: the counts, then (key, value type, value bytes) pairs."""

    def string(text):
        return len(text).to_bytes(8, "little") + text

    body = b"".join(string(key) + kind.to_bytes(4, "little") + value for key, kind, value in pairs)
    counts = tensor_count.to_bytes(8, "little") + len(pairs).to_bytes(8, "little")
    return b"GGUF" + (3).to_bytes(4, "little") + counts + body + bytes(64)


HUGE = (2**40).to_bytes(8, "little")
ARCHITECTURE = (b"general.architecture", 8, (5).to_bytes(8, "little") + b"llama")
HOSTILE_HEADERS = {
    # the gguf package alone never returns on this one (it builds a list of 2**40 indices)
    "numbers": (0, [ARCHITECTURE, (b"x", 9, (4).to_bytes(4, "little") + HUGE)], "array 'x'"),
    "strings": (0, [ARCHITECTURE, (b"t", 9, (8).to_bytes(4, "little") + HUGE)], "array 't'"),
    "long string": (0, [(b"general.architecture", 8, HUGE)], "'general.architecture'"),
    "tensor count": (2**40, [ARCHITECTURE], "the tensor count"),
    "value type": (0, [(b"y", 77, b"")], "unknown value type 77"),
}


@pytest.mark.backend_free
@pytest.mark.parametrize("case", sorted(HOSTILE_HEADERS))
def test_hostile_counts_fail_at_once_naming_the_field(case, tmp_path):
    """Checked in a subprocess with a deadline: a parser that trusts the count hangs."""
    tensors, pairs, field = HOSTILE_HEADERS[case]
    path = tmp_path / "hostile.gguf"
    path.write_bytes(_header(tensors, pairs))
    code = (
        "import sys\n"
        "from nlp4keras.checkpoints.gguf_reader import GGUFCheckpointReader\n"
        "from nlp4keras.checkpoints.errors import CheckpointError\n"
        "try:\n    GGUFCheckpointReader(sys.argv[1])\n"
        "except CheckpointError as error:\n    print(error)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"corrupt or truncated GGUF file .*hostile\.gguf", run.stdout), run.stdout
    assert field in run.stdout, run.stdout


def test_a_folder_with_one_gguf_file_loads_like_the_file(tmp_path):
    import keras

    from nlp4keras.models import build_transformer_model

    folder = tmp_path / "model"
    folder.mkdir()
    path = write_tiny_gguf(folder / "tiny.gguf")
    with open_checkpoint(folder) as by_folder, open_checkpoint(path) as by_file:
        assert by_folder.path == str(path)
        assert by_folder.keys() == by_file.keys()
    reference = build_transformer_model(checkpoint_path=path, model="llama")
    for config_path in (None, folder):  # the HF habit: the folder twice
        model = build_transformer_model(config_path, folder, model="llama")
        for ours, theirs in zip(model.weights, reference.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs)
            )
    write_tiny_gguf(folder / "other.gguf", seed=1)
    with fails(r"holds 2 GGUF files \(other.gguf, tiny.gguf\): pass the path", folder):
        open_checkpoint(folder)
