"""Shared test setup: Keras home inside the repo, assets, tiny HF models."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("KERAS_HOME", str(REPO / ".keras_home"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two test processes on the machine's cores: one thread
    # for each one's matmuls (and in the scripts they start), not two each
    # fighting. (XLA drops flags after a bare `intra_op_parallelism_threads=1`,
    # such as the device count a test appends, so only the Eigen flag.)
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(name, "1")
    flags = "--xla_cpu_multi_thread_eigen=false"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()

import pytest  # noqa: E402
from helpers import TINY_BERT, randomize_  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run unless asked otherwise,
# so that CI cannot turn red on an input nobody has seen before; search anew
# with HYPOTHESIS_PROFILE=explore (what each test checks is the same).
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

import nlp4keras  # noqa: E402  (chooses the Keras backend before keras loads)

# isort: split
from lanes import BACKEND, current_lane, split_items  # noqa: E402

ASSETS = REPO / ".assets"


def pytest_collection_modifyitems(config, items):
    """In a lane of `make test`, leave backend_free / spread tests to the
    lane that runs them (lanes.py)."""
    lane = current_lane()
    if lane is None:
        return
    kept, left = split_items(items, *lane)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config):
    lane = current_lane()
    if lane is not None:
        return (
            f"lane {lane[0] + 1} of {lane[1]} ({BACKEND}): backend_free tests run in lane 1, "
            "spread cases in one lane each (unset NLP4KERAS_TEST_LANE to run all)"
        )


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 folder, fetched by `make assets`."""
    path = ASSETS / "minilm"
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"real MiniLM weights missing at {path}: run `make assets` (make test does)")
    return path


@pytest.fixture(scope="session")
def smollm2_reference():
    """(path of the real SmolLM2 GGUF, transformers' LlamaForCausalLM loaded
    from it, its HF tokenizer): loaded once per run (about 15 s)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    path = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.fail(f"SmolLM2 GGUF missing at {path}: run `make assets` (make test does)")
    reference = LlamaForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return path, reference, tokenizer


@pytest.fixture(scope="session")
def tiny_pretraining(tmp_path_factory):
    """A random BertForPreTraining (every head) saved three ways:
    safetensors, sharded safetensors, and a torch.save pytorch_model.bin."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    config = BertConfig(**TINY_BERT)
    model = randomize_(BertForPreTraining(config).eval())
    folders = {}
    folders["safetensors"] = tmp_path_factory.mktemp("tiny_st")
    model.save_pretrained(folders["safetensors"])
    folders["sharded"] = tmp_path_factory.mktemp("tiny_sharded")
    model.save_pretrained(folders["sharded"], max_shard_size="20KB")
    folders["bin"] = tmp_path_factory.mktemp("tiny_bin")
    config.save_pretrained(folders["bin"])
    torch.save(model.state_dict(), folders["bin"] / "pytorch_model.bin")
    return model, folders


@pytest.fixture
def one_torch_thread():
    """torch's CPU thread pool only slows tiny models down (badly on a shared
    machine): one thread for the test, restored afterwards."""
    import keras

    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
