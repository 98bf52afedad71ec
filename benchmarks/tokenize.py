"""Tokenizer throughput on ~59k real lines (tests/real_text.py): nlp4keras'
`Tokenizer` (one text at a time, and `encode_batch` into padded arrays) against
HF `tokenizers` (Rust `BertWordPieceTokenizer`, its default two threads or
one, truncating in Rust; padded either by numpy, the fastest way found, or by
its own padding) into the same padded numpy arrays
and a bert4keras-style pure-Python loop (benchmarks/bert4keras_style.py).

Every implementation encodes every line with maxlen 512 in batches of
--batch lines, with tokenizers built fresh each round (cold caches); the
batch outputs are checked to be identical before timing.
Rounds interleave the implementations (order rotated) and the table reports
medians. Usage (from the repo root):

    python benchmarks/tokenize.py [--rounds 3] [--batch 256] [--lines N]
"""

import os
import sys

# This file is named like the standard library's `tokenize`, which numpy's
# import chain needs: search the standard library before this folder.
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path += [HERE, os.path.join(ROOT, "tests")]  # bert4keras_style, real_text

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bert4keras_style import CharLoopTokenizer  # noqa: E402
from real_text import ASSETS, real_lines  # noqa: E402

from nlp4keras.tokenizers import Tokenizer, load_vocab  # noqa: E402

MAXLEN = 512
HF_REFERENCE = "HF tokenizers encode_batch_fast (Rust) + numpy padding"
VOCABS = {"bert-base-chinese": "bert_chinese", "MiniLM (English uncased)": "minilm"}


def batches(lines, size):
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def pad(rows):
    """Right-padded int32 array of id lists, by one vectorised scatter."""
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    out = np.zeros((len(rows), lengths.max()), dtype=np.int32)
    out[np.arange(lengths.max()) < lengths[:, None]] = np.concatenate(rows)
    return out


def make_impls(vocab_path):
    import tokenizers as hf_tokenizers

    ours = Tokenizer(vocab_path, do_lower_case=True, word_maxlen=100)
    ours_single = Tokenizer(vocab_path, do_lower_case=True, word_maxlen=100)  # own cache
    hf = hf_tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=True)
    hf.enable_truncation(MAXLEN)
    hf_padding = hf_tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=True)
    hf_padding.enable_truncation(MAXLEN)
    hf_padding.enable_padding(pad_id=0)
    loop = CharLoopTokenizer(load_vocab(vocab_path), word_maxlen=100)

    def hf_fast(batch):
        # The fastest way found to padded arrays: no offsets, numpy padding.
        return pad([e.ids for e in hf._tokenizer.encode_batch_fast(batch)])

    def hf_one_thread(batch):
        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read at every call
        try:
            return hf_fast(batch)
        finally:
            os.environ["TOKENIZERS_PARALLELISM"] = "true"

    def hf_rust_padding(batch):
        encodings = hf_padding.encode_batch(batch)
        token_ids = np.array([e.ids for e in encodings], dtype=np.int32)
        segment_ids = np.array([e.type_ids for e in encodings], dtype=np.int32)
        return token_ids, segment_ids

    return {
        "nlp4keras encode_batch": lambda batch: ours.encode_batch(batch, maxlen=MAXLEN),
        "nlp4keras encode, one text at a time": lambda batch: pad(
            [ours_single.encode(text, maxlen=MAXLEN)[0] for text in batch]
        ),
        "HF tokenizers encode_batch_fast (Rust) + numpy padding": hf_fast,
        "HF tokenizers encode_batch_fast, 1 thread": hf_one_thread,
        "HF tokenizers encode_batch with its own padding": hf_rust_padding,
        "bert4keras-style Python loop": lambda batch: pad(
            [loop.encode(text, MAXLEN)[0] for text in batch]
        ),
    }


def run_all(impl, chunks):
    start = time.perf_counter()
    outputs = [impl(chunk) for chunk in chunks]
    return time.perf_counter() - start, outputs


def first_array(output):
    return output[0] if isinstance(output, tuple) else output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--sources", nargs="*", default=None, help="subset of real_text.SOURCES")
    parser.add_argument("--out", default="tokenize.json")
    args = parser.parse_args()
    lines = real_lines(*([args.sources] if args.sources else []))[: args.lines]
    chunks = batches(lines, args.batch)
    n_chars = sum(map(len, lines))
    print(f"{len(lines)} lines, {n_chars} chars, batches of {args.batch}, maxlen {MAXLEN}\n")
    results = {}
    for label, folder in VOCABS.items():
        vocab_path = str(ASSETS / folder / "vocab.txt")
        names = list(make_impls(vocab_path))
        times = {name: [] for name in names}
        reference = None
        for round_index in range(args.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            # Fresh tokenizers every round: our per-word cache starts cold, as
            # on a first pass over a corpus (later epochs would be faster).
            impls = make_impls(vocab_path)
            for name in order:
                seconds, outputs = run_all(impls[name], chunks)
                times[name].append(seconds)
                arrays = [first_array(o) for o in outputs]
                if reference is None:
                    reference = arrays
                for got, want in zip(arrays, reference):
                    if not np.array_equal(got, want):
                        sys.exit(f"{name} gives different ids from the first implementation")
        hf_median = statistics.median(times[HF_REFERENCE])
        print(f"### {label}\n")
        print("| implementation | median s | lines/s | k chars/s | time / HF |")
        print("|---|---|---|---|---|")
        results[label] = {}
        for name in names:
            median = statistics.median(times[name])
            results[label][name] = {"seconds": times[name], "median": median}
            print(
                f"| {name} | {median:.2f} | {len(lines) / median:,.0f} | "
                f"{n_chars / median / 1e3:,.0f} | {median / hf_median:.2f}x |"
            )
        print()
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", args.out), "w") as f:
        json.dump({"lines": len(lines), "chars": n_chars, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
