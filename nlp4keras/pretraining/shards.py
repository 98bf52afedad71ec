"""Token shards: text tokenised once into a compact on-disk format that any
backend reads with numpy alone (no TensorFlow).

A shard is a folder `shard-00000/` holding
    tokens.npy       the token ids of all its documents, end to end (uint16
                     when the vocab fits, else int32), without [CLS]/[SEP];
    word_starts.npy  uint8, 1 where a token starts a word (for whole-word masking);
    offsets.npy      int64, document d is tokens[offsets[d]:offsets[d + 1]];
    meta.json        the format, vocab size and counts, written last: a shard
                     without it did not finish.
Readers map the arrays (`np.load(mmap_mode="r")`), so shards larger than
memory cost only the pages touched.

Build from the command line:
    python -m nlp4keras.pretraining.shards --vocab vocab.txt --out shards/ corpus*.txt
"""

import argparse
import itertools
import json
import os

import numpy as np

from nlp4keras import validation
from nlp4keras.pretraining.corpus import DOCUMENT_UNITS, SPLITS, jieba_words, read_documents
from nlp4keras.pretraining.vocab import PretrainingVocab
from nlp4keras.snippets.parallel import parallel_apply

FORMAT = "nlp4keras-pretraining-shard"
VERSION = 1
ARRAYS = ("tokens", "word_starts", "offsets")


class ShardError(ValueError):
    """A shard that cannot be read: missing, truncated, corrupt or made for
    another vocab. The message names the file."""


def token_dtype(vocab_size):
    return np.dtype("uint16") if vocab_size <= 2**16 else np.dtype("int32")


# Worker processes build their vocab once, keyed by (path, do_lower_case).
_VOCABS = {}


def encode_documents(job):
    """`(vocab_path, do_lower_case, segment, texts)` -> (token ids, word-start
    flags, token count per document) as arrays (see `PretrainingVocab.encode_words`)."""
    vocab_path, do_lower_case, segment, texts = job
    key = (vocab_path, do_lower_case)
    if key not in _VOCABS:
        _VOCABS[key] = PretrainingVocab(vocab_path, do_lower_case)
    vocab = _VOCABS[key]
    ids, starts, lengths = [], [], []
    for text in texts:
        text_ids, text_starts = vocab.encode_words(text, segment(text))
        ids += text_ids
        starts += text_starts
        lengths.append(len(text_ids))
    return np.array(ids, np.int64), np.array(starts, np.uint8), np.array(lengths, np.int64)


def build_shards(
    paths,
    vocab_path,
    out_dir,
    segment=jieba_words,
    do_lower_case=True,
    document="line",
    clean=None,
    split="train",
    heldout_fraction=0.0,
    tokens_per_shard=2**24,
    workers=1,
    documents_per_job=500,
):
    """Tokenise the documents of `paths` (see `read_documents`) into shards
    of about `tokens_per_shard` tokens under `out_dir`; returns their folders.

    segment: text -> list of words (default jieba); a word's tokens are
    masked together. workers > 1 tokenises jobs of `documents_per_job`
    documents in worker processes (`parallel_apply`; `segment` must then be
    a module-level function); the shards are the same for any `workers`.
    Memory holds one shard's tokens and the jobs in flight, not the corpus.
    Documents with no tokens are dropped."""
    who = "build_shards"
    vocab = PretrainingVocab(vocab_path, do_lower_case)
    if not callable(segment):
        validation.instance(segment, "segment", (), who, what="a callable text -> words")
    tokens_per_shard = validation.integer(tokens_per_shard, "tokens_per_shard", who, minimum=1)
    workers = validation.integer(workers, "workers", who, minimum=1)
    documents_per_job = validation.integer(documents_per_job, "documents_per_job", who, minimum=1)
    validation.instance(out_dir, "out_dir", (str, os.PathLike), who, what="a folder path")
    out_dir = os.fspath(out_dir)
    if os.path.isdir(out_dir) and any(n.startswith("shard-") for n in os.listdir(out_dir)):
        raise FileExistsError(f"{who}: {out_dir} already holds shards; choose an empty folder")
    texts = read_documents(paths, document, clean, split, heldout_fraction, who)
    jobs = (
        (vocab.path, vocab.do_lower_case, segment, chunk)
        for chunk in iter(lambda: list(itertools.islice(texts, documents_per_job)), [])
    )
    writer = _ShardWriter(out_dir, vocab, tokens_per_shard)
    if workers == 1:
        for job in jobs:
            writer.add(*encode_documents(job))
    else:  # results come back in job order: the same shards for any `workers`
        parallel_apply(encode_documents, jobs, workers, 2 * workers,
                       callback=lambda result: writer.add(*result), unordered=False)  # fmt: skip
    folders = writer.close()
    if not folders:
        raise ValueError(
            f"{who}: no document with tokens in {paths!r} (split={split!r}, "
            f"heldout_fraction={heldout_fraction}): the corpus is empty"
        )
    return folders


class _ShardWriter:
    def __init__(self, out_dir, vocab, tokens_per_shard):
        self.out_dir, self.vocab, self.limit = out_dir, vocab, tokens_per_shard
        self.parts, self.n_tokens, self.folders = [], 0, []

    def add(self, ids, starts, lengths):
        keep = lengths > 0
        self.parts.append((ids, starts, lengths[keep]))
        self.n_tokens += len(ids)
        if self.n_tokens >= self.limit:
            self.flush()

    def flush(self):
        if not self.parts:
            return
        ids, starts, lengths = (np.concatenate(arrays) for arrays in zip(*self.parts))
        self.parts, self.n_tokens = [], 0
        if lengths.size:
            folder = os.path.join(self.out_dir, f"shard-{len(self.folders):05d}")
            write_shard(folder, ids, starts, lengths, self.vocab.vocab_size)
            self.folders.append(folder)

    def close(self):
        self.flush()
        return self.folders


def write_shard(folder, token_ids, word_starts, lengths, vocab_size):
    """One shard folder from flat ids, word-start flags and document lengths."""
    os.makedirs(folder, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrays = dict(
        tokens=np.asarray(token_ids).astype(token_dtype(vocab_size)),
        word_starts=np.asarray(word_starts, np.uint8),
        offsets=offsets,
    )
    for name, array in arrays.items():
        np.save(os.path.join(folder, f"{name}.npy"), array)
    meta = dict(
        format=FORMAT,
        version=VERSION,
        vocab_size=int(vocab_size),
        n_tokens=int(offsets[-1]),
        n_documents=len(offsets) - 1,
    )
    temporary = os.path.join(folder, "meta.json.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(temporary, os.path.join(folder, "meta.json"))  # last: marks the shard complete


class Shard:
    """One shard, its arrays memory-mapped: `tokens`, `word_starts`,
    `offsets`, `path`, `vocab_size`. Pickles as its path (worker processes
    map the files again instead of copying them)."""

    def __init__(self, path, vocab_size):
        self.path = os.fspath(path)
        self.vocab_size = vocab_size
        meta = _read_meta(self.path, vocab_size)
        n_tokens, n_documents = meta["n_tokens"], meta["n_documents"]
        expected = dict(
            tokens=(token_dtype(vocab_size), n_tokens),
            word_starts=(np.dtype("uint8"), n_tokens),
            offsets=(np.dtype("int64"), n_documents + 1),
        )
        for name, (dtype, length) in expected.items():
            setattr(self, name, _load_array(os.path.join(self.path, f"{name}.npy"), dtype, length))
        offsets = self.offsets
        if offsets[0] != 0 or offsets[-1] != n_tokens or np.any(np.diff(offsets) < 0):
            raise ShardError(f"{os.path.join(self.path, 'offsets.npy')} is corrupt: not 0 .. "
                             f"{n_tokens} in increasing order")  # fmt: skip

    @property
    def n_documents(self):
        return len(self.offsets) - 1

    def document(self, index):
        """(token ids, word-start flags) of document `index`."""
        start, end = self.offsets[index], self.offsets[index + 1]
        return self.tokens[start:end], self.word_starts[start:end]

    def __getstate__(self):
        return {"path": self.path, "vocab_size": self.vocab_size}

    def __setstate__(self, state):
        self.__init__(state["path"], state["vocab_size"])

    def __repr__(self):
        return f"Shard({self.path!r}, {self.n_documents} documents, {len(self.tokens)} tokens)"


def _read_meta(folder, vocab_size):
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        raise ShardError(f"{path} is missing: {folder} is not a shard, or its build did not finish")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta["format"] != FORMAT or meta["version"] != VERSION:
            raise ShardError(f"{path}: not a version-{VERSION} {FORMAT} (got {meta!r:.120})")
        counts = [meta["vocab_size"], meta["n_tokens"], meta["n_documents"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ShardError(f"{path} is corrupt: {error}") from None
    if not all(validation.is_integer(c) and c >= 0 for c in counts):
        raise ShardError(f"{path} is corrupt: bad counts {counts}")
    if meta["vocab_size"] != vocab_size:
        raise ShardError(
            f"{path}: the shard was built with a vocab of {meta['vocab_size']} tokens, but it is "
            f"read with one of {vocab_size}: rebuild the shards with this vocab"
        )
    return meta


def _load_array(path, dtype, length):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ShardError(f"{path} is missing") from None
    except (ValueError, OSError, EOFError) as error:
        raise ShardError(f"{path} is corrupt or truncated: {error}") from None
    if array.dtype != dtype or array.shape != (length,):
        raise ShardError(
            f"{path} is corrupt: expected {length} values of {dtype}, "
            f"found shape {array.shape} of {array.dtype}"
        )
    return array


def open_shards(path, vocab_size):
    """The shards of a folder made by `build_shards` (its `shard-*`
    subfolders, in order), or of a list of shard folders."""
    who = "open_shards"
    vocab_size = validation.integer(vocab_size, "vocab_size", who, minimum=1)
    if isinstance(path, (str, os.PathLike)):
        folder = os.fspath(path)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{who}: shard folder not found: {folder}")
        if any(os.path.isfile(os.path.join(folder, f"{name}.npy")) for name in ARRAYS):
            paths = [folder]  # one shard (Shard says what is missing)
        else:
            names = sorted(n for n in os.listdir(folder) if n.startswith("shard-"))
            paths = [os.path.join(folder, name) for name in names]
            if not paths:
                raise ValueError(f"{who}: no shard-* folders in {folder}")
    else:
        paths = list(path)
        if not paths:
            raise ValueError(f"{who}: the list of shard folders is empty")
    return [Shard(p, vocab_size) for p in paths]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nlp4keras.pretraining.shards",
        description="Tokenise text files (jieba words, WordPiece tokens) into pretraining shards.",
        allow_abbrev=False,
    )
    parser.add_argument("files", nargs="+", help="UTF-8 text files")
    parser.add_argument("--vocab", required=True, help="BERT vocab.txt")
    parser.add_argument("--out", required=True, help="an empty folder for the shards")
    parser.add_argument("--cased", action="store_true", help="keep case (default: lowercase)")
    parser.add_argument("--document", choices=DOCUMENT_UNITS, default="line")
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--heldout-fraction", type=float, default=0.0)
    parser.add_argument("--tokens-per-shard", type=int, default=2**24)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    folders = build_shards(
        args.files,
        args.vocab,
        args.out,
        do_lower_case=not args.cased,
        document=args.document,
        split=args.split,
        heldout_fraction=args.heldout_fraction,
        tokens_per_shard=args.tokens_per_shard,
        workers=args.workers,
    )
    for folder in folders:
        print(folder)


if __name__ == "__main__":
    main()
