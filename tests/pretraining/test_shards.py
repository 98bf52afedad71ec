"""The on-disk shard format: round trip through memory maps, clear errors
for broken shards and bad input, the held-out split and the CLI."""

import json

import numpy as np
import pytest

from nlp4keras.pretraining import (
    Shard,
    ShardError,
    build_shards,
    heldout_score,
    jieba_words,
    open_shards,
    read_documents,
    write_shard,
)
from nlp4keras.pretraining.shards import main

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only


def random_shard(folder, vocab_size, n_tokens=1000, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size, n_tokens)
    starts = rng.integers(0, 2, n_tokens).astype(np.uint8)
    lengths = np.diff(np.concatenate([[0], np.sort(rng.choice(n_tokens, 9)), [n_tokens]]))
    write_shard(folder, ids, starts, lengths, vocab_size)
    return ids, starts, lengths


@pytest.mark.parametrize("vocab_size, dtype", [(21128, np.uint16), (2**16, np.uint16),
                                               (250_000, np.int32)])  # fmt: skip
def test_round_trip_through_memory_maps(tmp_path, vocab_size, dtype):
    ids, starts, lengths = random_shard(tmp_path / "shard", vocab_size)
    shard = Shard(tmp_path / "shard", vocab_size)
    assert isinstance(shard.tokens, np.memmap) and shard.tokens.dtype == dtype
    assert np.array_equal(shard.tokens, ids) and np.array_equal(shard.word_starts, starts)
    assert np.array_equal(np.diff(shard.offsets), lengths)
    assert np.array_equal(shard.document(3)[0], ids[sum(lengths[:3]) : sum(lengths[:4])])
    again = pickle_round_trip(shard)  # worker processes map the files again
    assert again.path == shard.path and np.array_equal(again.tokens, ids)


def pickle_round_trip(value):
    import pickle

    payload = pickle.dumps(value)
    assert len(payload) < 500  # the path, not the arrays
    return pickle.loads(payload)


def test_truncated_shard_names_the_file(tmp_path):
    random_shard(tmp_path / "shard", 21128)
    path = tmp_path / "shard" / "tokens.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ShardError, match=r"tokens\.npy is corrupt or truncated"):
        Shard(tmp_path / "shard", 21128)


def test_corrupt_shard_names_the_file(tmp_path):
    random_shard(tmp_path / "shard", 21128)
    (tmp_path / "shard" / "word_starts.npy").write_bytes(b"not a numpy file at all")
    with pytest.raises(ShardError, match=r"word_starts\.npy is corrupt"):
        Shard(tmp_path / "shard", 21128)
    random_shard(tmp_path / "other", 21128)
    np.save(tmp_path / "other" / "offsets.npy", np.arange(10, dtype=np.int64)[::-1].copy())
    with pytest.raises(ShardError, match=r"offsets\.npy is corrupt"):
        Shard(tmp_path / "other", 21128)


def test_unfinished_shard_names_its_missing_meta(tmp_path):
    random_shard(tmp_path / "shard", 21128)
    (tmp_path / "shard" / "meta.json").unlink()
    with pytest.raises(ShardError, match=r"meta\.json is missing.*did not finish"):
        open_shards(tmp_path / "shard", 21128)


def test_shard_of_another_vocab_size_is_refused(tmp_path):
    random_shard(tmp_path / "shard-00000", 30522)
    with pytest.raises(ShardError, match=r"meta\.json.*vocab of 30522 tokens.*one of 21128"):
        open_shards(tmp_path, 21128)
    meta = json.loads((tmp_path / "shard-00000" / "meta.json").read_text())
    assert meta["vocab_size"] == 30522 and meta["n_documents"] == 10


def test_sample_shards_hold_the_documents_tokens(sample_shards, sample_file, vocab):
    documents = list(read_documents([sample_file]))
    assert sum(s.n_documents for s in sample_shards) == len(documents) == 2000
    shard = sample_shards[0]
    for d in range(0, 300, 17):  # jieba words tokenised one by one: BERT's ids here
        expected = vocab.tokenizer.encode(documents[d])[0][1:-1]
        assert shard.document(d)[0].tolist() == expected
    starts = np.asarray(shard.word_starts, bool)
    assert 0.4 < starts.mean() < 0.9  # multi-character words are marked as such


def test_build_is_the_same_with_worker_processes(vocab, sample_file, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("".join(sample_file.read_text(encoding="utf-8").splitlines(True)[:120]))
    one = open_shards(build_shards([small], vocab.path, tmp_path / "one"), vocab.vocab_size)
    two = build_shards([small], vocab.path, tmp_path / "two", workers=2, documents_per_job=20)
    two = open_shards(two, vocab.vocab_size)
    for a, b in zip(one, two, strict=True):
        for name in ("tokens", "word_starts", "offsets"):
            assert np.array_equal(getattr(a, name), getattr(b, name))


def test_heldout_split_is_stable_and_disjoint(vocab, sample_file, tmp_path):
    heldout = list(read_documents([sample_file], split="heldout", heldout_fraction=0.1))
    train = list(read_documents([sample_file], split="train", heldout_fraction=0.1))
    every = list(read_documents([sample_file]))
    assert sorted(heldout + train) == sorted(every) and not set(heldout) & set(train)
    assert 0.07 < len(heldout) / len(every) < 0.13
    assert heldout_score("人民日报") == heldout_score("人民日报") < 1  # no per-run hash seed
    folders = build_shards([sample_file], vocab.path, tmp_path / "held", split="heldout",
                           heldout_fraction=0.1)  # fmt: skip
    assert sum(s.n_documents for s in open_shards(folders, vocab.vocab_size)) == len(heldout)


def test_paragraph_documents(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("一\n二\n\n\n三\n  \n四", encoding="utf-8")
    assert list(read_documents([path], document="paragraph")) == ["一\n二", "三", "四"]
    assert list(read_documents(path)) == ["一", "二", "三", "四"]


def test_bad_input_is_named(vocab, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="the corpus is empty"):
        build_shards([blank], vocab.path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="vocab file not found: .*missing.txt"):
        build_shards([blank], tmp_path / "missing.txt", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="text file not found: .*nowhere.txt"):
        build_shards([tmp_path / "nowhere.txt"], vocab.path, tmp_path / "out")
    with pytest.raises(ValueError, match="`paths` is empty"):
        build_shards([], vocab.path, tmp_path / "out")
    with pytest.raises(ValueError, match="`document` must be one of 'line', 'paragraph'"):
        build_shards([blank], vocab.path, tmp_path / "out", document="page")
    with pytest.raises(ValueError, match="`tokens_per_shard` must be an integer >= 1"):
        build_shards([blank], vocab.path, tmp_path / "out", tokens_per_shard=0)
    with pytest.raises(TypeError, match="`segment` must be a callable"):
        build_shards([blank], vocab.path, tmp_path / "out", segment="jieba")
    with pytest.raises(FileNotFoundError, match="shard folder not found"):
        open_shards(tmp_path / "none", vocab.vocab_size)


def test_command_line_builds_shards(vocab, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("今天天气很好。\n我们去公园散步吧！\n", encoding="utf-8")
    main(["--vocab", vocab.path, "--out", str(tmp_path / "out"), str(text)])
    [shard] = open_shards(tmp_path / "out", vocab.vocab_size)
    assert shard.n_documents == 2 and capsys.readouterr().out.strip() == shard.path
    words = jieba_words("今天天气很好。")  # one token per char here
    assert shard.document(0)[1].tolist() == [int(k == 0) for w in words for k in range(len(w))]
    assert any(len(w) > 1 for w in words)
    with pytest.raises(FileExistsError, match="already holds shards"):
        main(["--vocab", vocab.path, "--out", str(tmp_path / "out"), str(text)])
    with pytest.raises(SystemExit):
        main(["--vocab", vocab.path, "--out", str(tmp_path / "x"), "--bogus", "2", str(text)])
    assert "unrecognized arguments" in capsys.readouterr().err
