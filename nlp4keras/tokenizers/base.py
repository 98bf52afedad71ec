"""What all tokenizers share: special tokens, truncation, `encode` and batches."""

from itertools import chain

import numpy as np


def _check_text(text, name="text"):
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")


class TokenizerBase:
    """Special tokens, truncation and `encode`, shared by all tokenizers.
    Subclasses implement `_tokenize` (text -> tokens without start/end),
    `token_to_id`, `id_to_token` and `decode`."""

    def __init__(
        self, token_start="[CLS]", token_end="[SEP]", pre_tokenize=None, token_translate=None
    ):
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = token_start
        self._token_end = token_end
        self._pre_tokenize = pre_tokenize
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}

    def tokenize(self, text, maxlen=None):
        """Tokens of `text` with the start/end tokens, cut from the right."""
        _check_text(text)
        content = self._content_tokens(text)
        if maxlen is not None:
            _truncate(_budget(maxlen, self._n_specials()), "right", content)
        return self._wrap(content)

    def encode(
        self, first_text, second_text=None, maxlen=None, pattern="S*E*E", truncate_from="right"
    ):
        """`(token_ids, segment_ids)` for one text or a pair of texts (each a
        str, or a token list such as `tokenize()` returns, as in bert4keras).

        pattern 'S*E*E': [CLS] A [SEP] B [SEP]; 'S*ES*E': [CLS] A [SEP] [CLS] B [SEP].
        With `maxlen`, tokens are removed one at a time from the longer text
        (the first on ties), at `truncate_from`: 'right', 'left', or an int
        index into that text's tokens counted with its start/end tokens.
        """
        first, second = self._encode_contents(
            first_text, second_text, maxlen, pattern, truncate_from
        )
        token_ids = self._wrap_ids(first)
        segment_ids = [0] * len(token_ids)
        if second is not None:
            second_ids = self._wrap_ids(second, pattern == "S*ES*E")
            token_ids += second_ids
            segment_ids += [1] * len(second_ids)
        return token_ids, segment_ids

    def encode_batch(
        self,
        first_texts,
        second_texts=None,
        maxlen=None,
        pattern="S*E*E",
        truncate_from="right",
        length=None,
        return_offsets=False,
    ):
        """Encode a list of texts (or of pairs) into padded int32 numpy arrays.

        Returns `(token_ids, segment_ids)`, both `[batch, length]`, padded at
        the end with the pad id (0 when the vocab has none). `length` pads to a
        fixed length instead of the longest row (it must hold every row: give
        `maxlen` to cut). With `return_offsets=True` a third array
        `[batch, length, 2]` holds each token's `(start, end)` character span
        in its own text (the first or the second); start/end/pad tokens and
        tokens that cannot be located get `(0, 0)`.
        """
        first_texts = _check_text_list(first_texts, "first_texts")
        if second_texts is not None:
            second_texts = _check_text_list(second_texts, "second_texts")
            if len(second_texts) != len(first_texts):
                raise ValueError(
                    f"got {len(first_texts)} first_texts but {len(second_texts)} second_texts"
                )
        rows, offsets = [], []
        for i, first_text in enumerate(first_texts):
            second_text = None if second_texts is None else second_texts[i]
            first, second = self._encode_contents(
                first_text, second_text, maxlen, pattern, truncate_from
            )
            rows.append((first, second))
            if return_offsets:
                offsets.append(self._row_offsets(first_text, first, second_text, second, pattern))
        return _pad_rows(self, rows, pattern, length, offsets if return_offsets else None)

    def __call__(self, texts, second_texts=None, **kwargs):
        """`encode_batch` for a list of texts, `encode` for one text."""
        if isinstance(texts, str):
            return self.encode(texts, second_texts, **kwargs)
        return self.encode_batch(texts, second_texts, **kwargs)

    def rematch(self, text, tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement rematch")

    def _encode_contents(self, first_text, second_text, maxlen, pattern, truncate_from):
        """Content ids of one or two texts (no start/end), truncated for `maxlen`."""
        if pattern not in ("S*E*E", "S*ES*E"):
            raise ValueError(f"pattern must be 'S*E*E' or 'S*ES*E', got {pattern!r}")
        first, second = self._ids_of(first_text, "first_text"), None
        if second_text is not None:
            second = self._ids_of(second_text, "second_text")
        if maxlen is not None:
            n_specials = self._n_specials()
            if second is not None:
                n_specials += self._n_specials(pattern == "S*ES*E")
            _truncate(
                _budget(maxlen, n_specials),
                truncate_from,
                first,
                second,
                n_start=int(self._token_start is not None),
                n_end=int(self._token_end is not None),
            )
        return first, second

    def _ids_of(self, text, name):
        """Content ids of a text, or of a token list (bert4keras accepted
        `tokenize()` output: its start/end tokens, if there, are dropped)."""
        if not isinstance(text, (list, tuple)):
            _check_text(text, name)
            return self._content_ids(text)
        for i, token in enumerate(text):
            if not isinstance(token, str):
                raise TypeError(f"{name}[{i}] must be a str token, got {type(token).__name__}")
        tokens = list(text)
        if tokens and self._token_start is not None and tokens[0] == self._token_start:
            tokens = tokens[1:]
        if tokens and self._token_end is not None and tokens[-1] == self._token_end:
            tokens = tokens[:-1]
        return self.tokens_to_ids(tokens)

    def _row_offsets(self, first_text, first, second_text, second, pattern):
        """`(start, end)` spans of a row's tokens, specials at (0, 0)."""
        spans = self._wrap_spans(first_text, first)
        if second is not None:
            spans += self._wrap_spans(second_text, second, pattern == "S*ES*E")
        return spans

    def _wrap_spans(self, text, content_ids, with_start=True):
        mapping = self.rematch(text, self.ids_to_tokens(content_ids))
        spans = [(m[0], m[-1] + 1) if m else (0, 0) for m in mapping]
        n_start = int(with_start and self._token_start is not None)
        n_end = int(self._token_end is not None)
        return [(0, 0)] * n_start + spans + [(0, 0)] * n_end

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def _content_ids(self, text):
        """Ids of `text` without start/end (a list the caller may change)."""
        return self.tokens_to_ids(self._content_tokens(text))

    def _content_tokens(self, text):
        """Tokens of `text` after `token_translate`, without start/end."""
        translate = self._token_translate
        return [translate.get(token) or token for token in self._tokenize(text)]

    def _wrap(self, content, with_start=True):
        """`content` with the start (if `with_start`) and end tokens around it."""
        start = [self._token_start] if with_start and self._token_start is not None else []
        end = [self._token_end] if self._token_end is not None else []
        return start + content + end

    def _wrap_ids(self, content, with_start=True):
        """Ids of `content` with the start/end token ids around it."""
        start = [self._token_start_id] if with_start and self._token_start is not None else []
        end = [self._token_end_id] if self._token_end is not None else []
        return start + content + end

    def _n_specials(self, with_start=True):
        return len(self._wrap([], with_start))

    def _tokenize(self, text):
        raise NotImplementedError(f"{type(self).__name__} must implement _tokenize")


def _budget(maxlen, n_specials):
    """How many text tokens fit in `maxlen` besides the start/end tokens."""
    if maxlen < n_specials:
        raise ValueError(f"maxlen={maxlen} cannot hold the {n_specials} start/end tokens")
    return maxlen - n_specials


def _truncate(budget, truncate_from, first, second=None, n_start=1, n_end=1):
    """Cut the lists in place, as if popping one token at a time from the
    longer list (the first on ties) until they hold `budget` tokens in all.
    An int `truncate_from` indexes a list as if its start/end tokens were
    there, clamped so these are never hit."""
    if truncate_from not in ("right", "left") and not isinstance(truncate_from, int):
        raise ValueError(f"truncate_from must be 'right', 'left' or an int, got {truncate_from!r}")
    lists = [first] if second is None else [first, second]
    for tokens, keep in zip(lists, _kept_lengths(budget, [len(t) for t in lists])):
        if keep >= len(tokens):
            continue
        if truncate_from == "right":
            del tokens[keep:]
        elif truncate_from == "left":
            del tokens[: len(tokens) - keep]
        else:
            while len(tokens) > keep:
                position = truncate_from
                if position < 0:
                    position += n_start + len(tokens) + n_end
                tokens.pop(min(max(position - n_start, 0), len(tokens) - 1))


def _kept_lengths(budget, lengths):
    """How many tokens each list keeps when popping from the longer one (the
    first on ties) until `budget` remain: the shorter list is kept whole if
    the longer one can still have at least as many; otherwise both end up
    halved, the first getting the smaller half."""
    if sum(lengths) <= budget:
        return lengths
    if len(lengths) == 1:
        return [budget]
    shorter = min(lengths)
    if budget - shorter >= shorter:
        return [length if length == shorter else budget - shorter for length in lengths]
    return [budget // 2, budget - budget // 2]


def _check_text_list(texts, name):
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise TypeError(f"{name} must be a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}")
    return texts


def _pad_rows(tokenizer, rows, pattern, length, offsets):
    """Padded `(token_ids, segment_ids[, offsets])` arrays from content rows."""
    wrapped, first_lengths = [], []
    for first, second in rows:
        ids = tokenizer._wrap_ids(first)
        first_lengths.append(len(ids))
        if second is not None:
            ids += tokenizer._wrap_ids(second, pattern == "S*ES*E")
        wrapped.append(ids)
    lengths = np.fromiter(map(len, wrapped), dtype=np.int64, count=len(wrapped))
    longest = int(lengths.max(initial=0))
    if length is None:
        length = longest
    elif longest > length:
        raise ValueError(f"a row has {longest} tokens, more than length={length}; pass maxlen")
    # One vectorised scatter of all ids into the rows' valid positions.
    positions = np.arange(length)
    valid = positions < lengths[:, None]
    token_ids = np.full((len(rows), length), tokenizer._token_pad_id or 0, dtype=np.int32)
    token_ids[valid] = np.fromiter(chain.from_iterable(wrapped), np.int32, int(lengths.sum()))
    second_part = positions >= np.asarray(first_lengths, dtype=np.int64)[:, None]
    segment_ids = (valid & second_part).astype(np.int32)
    if offsets is None:
        return token_ids, segment_ids
    spans = np.zeros((len(rows), length, 2), dtype=np.int32)
    for row, row_spans in enumerate(offsets):
        if row_spans:
            spans[row, : len(row_spans)] = row_spans
    return token_ids, segment_ids, spans
