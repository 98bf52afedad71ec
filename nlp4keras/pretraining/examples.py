"""Training examples read from shards, as fixed-length numpy arrays:

- `MlmExamples`: `[CLS] chunk [SEP]`, whole-word masked anew each epoch;
- `LmExamples`: GPT-style packing, documents joined by [SEP] and cut into
  blocks of maxlen tokens, targets the inputs shifted by one;
- `UnilmExamples`: `[CLS] source [SEP] target [SEP]` from a random split of
  a chunk (new each epoch), the loss on the target part only.

A document longer than an example's room is cut into chunks, at word starts
where one lies in the chunk. `example(index, epoch)` gives one example,
`batch(indices, epoch)` a Keras `(inputs, labels)` pair; labels are 0 where
no loss is taken (`SparseCategoricalCrossentropy(ignore_class=0)`)."""

import numpy as np

from nlp4keras import validation
from nlp4keras.pretraining.masking import example_rng, whole_word_mask
from nlp4keras.pretraining.vocab import IGNORED_LABEL


def document_chunks(shard, max_tokens, min_tokens=1):
    """`(starts, ends)` token spans covering each document of `shard` in
    pieces of at most `max_tokens`, cut at the last word start that fits
    (or at `max_tokens` inside a longer word); pieces shorter than
    `min_tokens` are dropped."""
    offsets = np.asarray(shard.offsets)
    starts, ends = [offsets[:-1]], [offsets[1:]]
    long_documents = np.flatnonzero(np.diff(offsets) > max_tokens)
    if long_documents.size:
        starts[0], ends[0] = (
            np.delete(starts[0], long_documents),
            np.delete(ends[0], long_documents),
        )
        pieces = [_cut(shard.word_starts, offsets[d], offsets[d + 1], max_tokens)
                  for d in long_documents]  # fmt: skip
        starts += [np.array([a for a, _ in p]) for p in pieces]
        ends += [np.array([b for _, b in p]) for p in pieces]
    starts, ends = np.concatenate(starts), np.concatenate(ends)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    keep = ends - starts >= min_tokens
    return starts[keep], ends[keep]


def _cut(word_starts, start, end, max_tokens):
    pieces = []
    while start < end:
        stop = min(start + max_tokens, end)
        if stop < end:
            later_starts = np.flatnonzero(word_starts[start + 1 : stop + 1])
            if later_starts.size:
                stop = start + 1 + int(later_starts[-1])
        pieces.append((start, stop))
        start = stop
    return pieces


class _Examples:
    """Examples over shards: `len()`, `example(index, epoch)`, `batch(indices, epoch)`."""

    def __init__(self, shards, vocab, maxlen, seed, min_maxlen):
        who = type(self).__name__
        if not isinstance(shards, (list, tuple)) or not shards:
            validation.instance(shards, "shards", (), who, what="a non-empty list of shards")
        for shard in shards:
            if shard.vocab_size != vocab.vocab_size:
                raise ValueError(
                    f"{who}: {shard.path} was opened for a vocab of {shard.vocab_size} tokens, "
                    f"the vocab {vocab.path} has {vocab.vocab_size}"
                )
        self.shards, self.vocab = list(shards), vocab
        self.maxlen = validation.integer(maxlen, "maxlen", who, minimum=min_maxlen)
        self.seed = validation.integer(seed, "seed", who, minimum=0)
        self.who = who

    def _index(self, spans):
        """Global (shard, start, end) arrays from per-shard (starts, ends)."""
        self.shard_of = np.concatenate([np.full(len(s), k) for k, (s, _) in enumerate(spans)])
        self.starts = np.concatenate([s for s, _ in spans]).astype(np.int64)
        self.ends = np.concatenate([e for _, e in spans]).astype(np.int64)
        if not len(self.starts):
            raise ValueError(f"{self.who}: the shards hold no example of this kind")

    def __len__(self):
        return len(self.starts)

    def _checked_index(self, index):
        index = validation.integer(index, "index", self.who, minimum=-len(self))
        if index >= len(self):
            raise IndexError(f"{self.who}: example {index} of {len(self)}")
        return index % len(self)

    def _span(self, index):
        shard = self.shards[self.shard_of[index]]
        start, end = self.starts[index], self.ends[index]
        return np.asarray(shard.tokens[start:end], np.int64), shard.word_starts[start:end]

    def batch(self, indices, epoch=0):
        """`(inputs, labels)` of the examples `indices`, stacked."""
        columns = list(zip(*(self.example(i, epoch) for i in indices)))
        arrays = [np.stack(column) for column in columns]
        inputs = arrays[:-1]
        return (inputs[0] if len(inputs) == 1 else inputs), arrays[-1]


def _padded(parts, maxlen):
    """Concatenate `parts` and pad with 0 ([PAD], or 'no loss' for labels)."""
    array = np.zeros(maxlen, np.int32)
    values = np.concatenate(parts)
    array[: len(values)] = values
    return array


class MlmExamples(_Examples):
    """`[CLS] chunk [SEP]` (chunks of at most maxlen - 2 tokens), padded to
    `maxlen`; `example(index, epoch)` -> (token_ids, segment_ids, labels),
    whole-word masked by `whole_word_mask` with the generator
    `example_rng(seed, epoch, index)`. Inputs: [token_ids, segment_ids].

    max_predictions=n (for `pretraining_model("mlm", max_predictions=n)`,
    whose head runs at n positions only): `example` -> (token_ids,
    segment_ids, masked_positions, labels), masked_positions the indices of
    the labelled tokens in increasing order and labels theirs, both int32
    (n,) padded with 0 (label 0: an empty slot, no loss); inputs: [token_ids,
    segment_ids, masked_positions]. The masking is the same as without (same
    seed, same masked inputs). n must be at least `most_masked()`, the most
    tokens the masking can choose in one example: a smaller n is refused
    here, so no example ever has more labels than slots and none is dropped."""

    def __init__(self, shards, vocab, maxlen=512, seed=0, rate=0.15, mask_fraction=0.8,
                 random_fraction=0.1, max_predictions=None):  # fmt: skip
        super().__init__(shards, vocab, maxlen, seed, min_maxlen=3)
        self.rate = validation.real(rate, "rate", self.who, above=0, maximum=1)
        self.mask_fraction = validation.real(mask_fraction, "mask_fraction", self.who, 0, 1)
        self.random_fraction = validation.real(
            random_fraction, "random_fraction", self.who, 0, 1 - self.mask_fraction
        )
        self.max_predictions = self._checked_max_predictions(max_predictions)
        self._index([document_chunks(shard, self.maxlen - 2) for shard in self.shards])

    def most_masked(self):
        """The most tokens `whole_word_mask` chooses in one example: it aims at
        floor(rate * k + u) tokens (k <= maxlen - 2 maskable tokens, u in
        [0, 1)), so at most floor(rate * (maxlen - 2)) + 1, and k at most."""
        room = self.maxlen - 2
        return min(int(np.floor(self.rate * room)) + 1, room)

    def _checked_max_predictions(self, max_predictions):
        if max_predictions is None:
            return None
        value = validation.integer(max_predictions, "max_predictions", self.who, minimum=1)
        most = self.most_masked()
        if value < most:
            raise ValueError(
                f"{self.who}: `max_predictions` ({value}) is below the {most} tokens masking can "
                f"choose in one example (rate={self.rate}, maxlen={self.maxlen}): give at least "
                f"{most} (masking is never cut to fit, and no label is dropped)"
            )
        return value

    def example(self, index, epoch=0):
        index = self._checked_index(index)
        token_ids, word_starts = self._span(index)
        rng = example_rng(self.seed, epoch, index)
        inputs, labels = whole_word_mask(token_ids, word_starts, self.vocab, rng, self.rate,
                                         self.mask_fraction, self.random_fraction)  # fmt: skip
        cls, sep, none = [self.vocab.cls_id], [self.vocab.sep_id], [IGNORED_LABEL]
        token_ids = _padded([cls, inputs, sep], self.maxlen)
        segment_ids = np.zeros(self.maxlen, np.int32)
        labels = _padded([none, labels, none], self.maxlen)
        if self.max_predictions is None:
            return token_ids, segment_ids, labels
        return (token_ids, segment_ids, *self.predictions(labels, index))

    def predictions(self, labels, index=None):
        """(masked_positions, labels) of max_predictions slots from an
        example's full-length labels (see the class docstring)."""
        positions = np.flatnonzero(labels != IGNORED_LABEL)
        if len(positions) > self.max_predictions:  # most_masked() rules it out
            raise ValueError(
                f"{self.who}: example {index} has {len(positions)} masked tokens, more than "
                f"max_predictions={self.max_predictions}"
            )
        n = self.max_predictions
        return _padded([positions], n), _padded([labels[positions]], n)


class LmExamples(_Examples):
    """GPT-style packing. Each shard's stream is its documents joined end to
    end, each followed by [SEP]; block k of a shard is stream[k * maxlen :
    (k + 1) * maxlen] and its labels stream[k * maxlen + 1 : (k + 1) *
    maxlen + 1] (the next token, across blocks). A shard's last block is
    shorter: it is padded with [PAD] and labels 0, like the label after the
    stream's end. Blocks do not cross shards. `example(index)` ->
    (token_ids, labels); inputs: token_ids. No randomness: the dataset
    shuffles the order of the blocks."""

    def __init__(self, shards, vocab, maxlen=512, seed=0):
        super().__init__(shards, vocab, maxlen, seed, min_maxlen=1)
        # stream position of the [SEP] closing each document, per shard
        self.sep_positions = [np.asarray(s.offsets[1:]) + np.arange(s.n_documents)
                              for s in self.shards]  # fmt: skip
        spans = []
        for shard in self.shards:
            length = len(shard.tokens) + shard.n_documents
            starts = np.arange(0, length, self.maxlen)
            spans.append((starts, np.minimum(starts + self.maxlen, length)))
        self._index(spans)

    def stream(self, shard_index, start, end):
        """Token ids at stream positions [start, end) of one shard."""
        shard, seps = self.shards[shard_index], self.sep_positions[shard_index]
        positions = np.arange(start, end)
        document = np.searchsorted(seps, positions)  # the document each position is in
        is_sep = positions == seps[np.minimum(document, len(seps) - 1)]
        tokens = shard.tokens[np.minimum(positions - document, len(shard.tokens) - 1)]
        return np.where(is_sep, self.vocab.sep_id, tokens).astype(np.int32)

    def example(self, index, epoch=0):
        index = self._checked_index(index)
        shard, start, end = self.shard_of[index], self.starts[index], self.ends[index]
        stream_end = self.sep_positions[shard][-1] + 1
        token_ids = self.stream(shard, start, end)
        labels = self.stream(shard, start + 1, min(end + 1, stream_end))
        return _padded([token_ids], self.maxlen), _padded([labels], self.maxlen)


class UnilmExamples(_Examples):
    """UniLM seq2seq: a chunk of n >= 2 tokens (at most maxlen - 3) split at
    s drawn uniformly from 1 .. n - 1 by `example_rng(seed, epoch, index)`:
    `[CLS] chunk[:s] [SEP] chunk[s:] [SEP]`, segment ids 0 up to the first
    [SEP] and 1 after, padded to maxlen. labels[i] = token_ids[i + 1] where
    segment_ids[i + 1] == 1 (each target token and the last [SEP], predicted
    from the position before), 0 elsewhere. `example(index, epoch)` ->
    (token_ids, segment_ids, labels); inputs: [token_ids, segment_ids]."""

    def __init__(self, shards, vocab, maxlen=512, seed=0):
        super().__init__(shards, vocab, maxlen, seed, min_maxlen=5)
        self._index([document_chunks(s, self.maxlen - 3, min_tokens=2) for s in self.shards])

    def split_point(self, index, epoch=0):
        n = self.ends[index] - self.starts[index]
        return int(example_rng(self.seed, epoch, index).integers(1, n))

    def example(self, index, epoch=0):
        index = self._checked_index(index)
        chunk, _ = self._span(index)
        split = self.split_point(index, epoch)
        cls, sep = [self.vocab.cls_id], [self.vocab.sep_id]
        token_ids = _padded([cls, chunk[:split], sep, chunk[split:], sep], self.maxlen)
        n_source, n_target = split + 2, len(chunk) - split + 1
        segment_ids = _padded([np.zeros(n_source), np.ones(n_target)], self.maxlen)
        labels = np.where(segment_ids[1:] == 1, token_ids[1:], IGNORED_LABEL)
        return token_ids, segment_ids, _padded([labels], self.maxlen)
