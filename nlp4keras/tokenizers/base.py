"""What all tokenizers share: special tokens, truncation, `encode` and batches."""

from itertools import chain

import numpy as np

from nlp4keras import validation
from nlp4keras.tokenizers.checks import (
    TextError,
    check_text,
    id_list,
    lone_surrogate,
    optional_token,
    refuse,
    text_list,
    token_list,
    translation,
    unknown_id_error,
    unknown_ids_error,
    words_of,
)

_PATTERNS = ("S*E*E", "S*ES*E")


class TokenizerBase:
    """Special tokens, truncation and `encode`, shared by all tokenizers.
    Subclasses implement `_tokenize` (text -> tokens without start/end),
    `token_to_id`, `id_to_token` and `decode`, and may give faster
    `_is_known_id(i)` / `_all_known(ids)` checks, `_vocab_size` and
    `_id_range` (lowest id, highest id, whether ids in between are missing)
    for error messages.

    Arguments are checked once per call: a wrong type raises TypeError and a
    bad value ValueError, naming the method, the argument and the value. An
    id outside the vocab raises `TokenIdError` (a ValueError)."""

    _vocab_size = None
    _id_range = None

    def __init__(
        self, token_start="[CLS]", token_end="[SEP]", pre_tokenize=None, token_translate=None
    ):
        who = type(self).__name__
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = optional_token(token_start, "token_start", who)
        self._token_end = optional_token(token_end, "token_end", who)
        self._pre_tokenize = validation.callable_or_none(pre_tokenize, "pre_tokenize", who)
        self._token_translate = translation(token_translate, who)
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}

    def tokenize(self, text, maxlen=None):
        """Tokens of `text` with the start/end tokens, cut from the right."""
        who = self._who("tokenize")
        check_text(text, "text", who)
        maxlen = validation.optional_integer(maxlen, "maxlen", who, minimum=0)
        try:
            content = self._content_tokens(text)
        except TextError as error:
            raise error.named(text, "text", who) from None
        if maxlen is not None:
            _truncate(_budget(maxlen, self._n_specials(), who), "right", content)
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
        who = self._who("encode")
        options = _encode_options(maxlen, pattern, truncate_from, who)
        first = self._ids_of(first_text, "first_text", who)
        second = None if second_text is None else self._ids_of(second_text, "second_text", who)
        self._truncate_contents(first, second, *options, who)
        token_ids = self._wrap_ids(first)
        segment_ids = [0] * len(token_ids)
        if second is not None:
            second_ids = self._wrap_ids(second, options[1] == "S*ES*E")
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
        who = self._who("encode_batch")
        maxlen, pattern, truncate_from = _encode_options(maxlen, pattern, truncate_from, who)
        first_texts = text_list(first_texts, "first_texts", who)
        if second_texts is not None:
            second_texts = text_list(second_texts, "second_texts", who)
            if len(second_texts) != len(first_texts):
                raise ValueError(
                    f"{who}: got {len(first_texts)} first_texts but {len(second_texts)} "
                    "second_texts; pass one second text for each first text"
                )
        length = validation.optional_integer(length, "length", who, minimum=0)
        return_offsets = validation.boolean(return_offsets, "return_offsets", who)
        rows, offsets = [], []
        for i, first_text in enumerate(first_texts):
            second_text = None if second_texts is None else second_texts[i]
            first, second = self._row_ids(first_text, second_text, i, who)
            self._truncate_contents(first, second, maxlen, pattern, truncate_from, who)
            rows.append((first, second))
            if return_offsets:
                offsets.append(self._row_offsets(first_text, first, second_text, second, pattern))
        return _pad_rows(self, rows, pattern, length, offsets if return_offsets else None, who)

    def __call__(self, texts, second_texts=None, **kwargs):
        """`encode_batch` for a list of texts, `encode` for one text."""
        if isinstance(texts, str):
            batch_only = sorted(set(kwargs) & {"length", "return_offsets"})
            if batch_only:
                raise TypeError(
                    f"{self._who('__call__')}: {', '.join(batch_only)} apply to a list of "
                    "texts, not to one text"
                )
            return self.encode(texts, second_texts, **kwargs)
        if not (hasattr(texts, "__len__") and hasattr(texts, "__getitem__")):
            refuse(texts, "texts", self._who("__call__"), "a str or a list of str")
        return self.encode_batch(texts, second_texts, **kwargs)

    def rematch(self, text, tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement rematch")

    def tokens_to_ids(self, tokens):
        """The id of each token (see `token_to_id`)."""
        return self._token_ids(token_list(tokens, "tokens", self._who("tokens_to_ids")))

    def ids_to_tokens(self, ids):
        """The token of each id; an id outside the vocab raises `TokenIdError`."""
        ids = self._checked_ids(ids, "ids", self._who("ids_to_tokens"))
        return [self.id_to_token(i) for i in ids]

    def _who(self, method):
        return f"{type(self).__name__}.{method}"

    def _is_known_id(self, i):
        """Whether `i` is an id of the vocab (here: whether `id_to_token` takes it)."""
        try:
            self.id_to_token(i)
        except (LookupError, ValueError):
            return False
        return True

    def _all_known(self, ids):
        return all(map(self._is_known_id, ids))

    def _checked_ids(self, ids, name, who):
        """`ids` as a list of ints, all in the vocab (else `TokenIdError`)."""
        ids = id_list(ids, name, who)
        if not self._all_known(ids):
            raise unknown_ids_error(
                ids, self._is_known_id, self._vocab_size, self._id_range, name, who
            )
        return ids

    def _checked_id(self, i, who):
        """`i` as an int in the vocab (else `TokenIdError`)."""
        i = validation.integer(i, "i", who)
        if not self._is_known_id(i):
            raise unknown_id_error(i, self._vocab_size, self._id_range, who)
        return i

    def _row_ids(self, first_text, second_text, row, who):
        """Content ids of one row of `encode_batch` (texts already checked)."""
        try:
            first = self._content_ids(first_text)
            second = None if second_text is None else self._content_ids(second_text)
        except TextError as error:
            if lone_surrogate(first_text) is not None:
                raise error.named(first_text, f"first_texts[{row}]", who) from None
            raise error.named(second_text, f"second_texts[{row}]", who) from None
        return first, second

    def _truncate_contents(self, first, second, maxlen, pattern, truncate_from, who):
        """Cut content ids (no start/end) in place so the row fits `maxlen`."""
        if maxlen is None:
            return
        n_specials = self._n_specials()
        if second is not None:
            n_specials += self._n_specials(pattern == "S*ES*E")
        _truncate(
            _budget(maxlen, n_specials, who),
            truncate_from,
            first,
            second,
            n_start=int(self._token_start is not None),
            n_end=int(self._token_end is not None),
        )

    def _ids_of(self, text, name, who):
        """Content ids of a text, or of a token list (bert4keras accepted
        `tokenize()` output: its start/end tokens, if there, are dropped)."""
        if isinstance(text, str):
            try:
                return self._content_ids(text)
            except TextError as error:
                raise error.named(text, name, who) from None
        if not isinstance(text, (list, tuple)):
            refuse(text, name, who, "a str (or a list of str tokens)")
        tokens = token_list(text, name, who)
        if tokens and self._token_start is not None and tokens[0] == self._token_start:
            tokens = tokens[1:]
        if tokens and self._token_end is not None and tokens[-1] == self._token_end:
            tokens = tokens[:-1]
        return self._token_ids(tokens)

    def _pre_tokenized(self, text):
        """The words `pre_tokenize` splits `text` into, checked to be str."""
        return words_of(self._pre_tokenize, text, type(self).__name__)

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

    def _token_ids(self, tokens):
        """The ids of `tokens`, known to be a list of str."""
        return [self.token_to_id(token) for token in tokens]

    def _content_ids(self, text):
        """Ids of `text` without start/end (a list the caller may change)."""
        return self._token_ids(self._content_tokens(text))

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
        start = end = []
        if with_start and self._token_start is not None:
            start = [self._token_start_id]
            if start[0] is None:
                start = [self._absent_special_id("start")]
        if self._token_end is not None:
            end = [self._token_end_id]
            if end[0] is None:
                end = [self._absent_special_id("end")]
        return start + content + end

    def _absent_special_id(self, name):
        """The id of a start/end token the vocab lacks: the unk id, as
        bert4keras' `token_to_id` gave it (read now: a script may set it)."""
        unk_id = getattr(self, "_token_unk_id", None)
        if unk_id is None:
            token = getattr(self, f"_token_{name}")
            raise ValueError(
                f"{type(self).__name__}: `token_{name}` {token!r} is not in the vocab, so it is "
                f"encoded as the unk token {self._token_unk!r} (as in bert4keras), which is not "
                f"in the vocab either; pass token_{name}=None to leave it out, or give the vocab "
                "these tokens"
            )
        return unk_id

    def _n_specials(self, with_start=True):
        return len(self._wrap([], with_start))

    def _tokenize(self, text):
        raise NotImplementedError(f"{type(self).__name__} must implement _tokenize")


def _encode_options(maxlen, pattern, truncate_from, who):
    """`(maxlen, pattern, truncate_from)` checked, maxlen and an index as ints."""
    if (
        (maxlen is None or (type(maxlen) is int and maxlen >= 0))
        and type(pattern) is str
        and pattern in _PATTERNS
        and type(truncate_from) is str
        and truncate_from in ("right", "left")
    ):
        return maxlen, pattern, truncate_from  # the common case, checked fast
    maxlen = validation.optional_integer(maxlen, "maxlen", who, minimum=0)
    pattern = validation.one_of(pattern, "pattern", _PATTERNS, who)
    if isinstance(truncate_from, str):
        if truncate_from not in ("right", "left"):
            raise ValueError(
                f"{who}: `truncate_from` must be 'right', 'left' or an int index, "
                f"got {truncate_from!r}"
            )
    elif validation.is_integer(truncate_from):
        truncate_from = int(truncate_from)
    else:
        refuse(truncate_from, "truncate_from", who, "'right', 'left' or an int index")
    return maxlen, pattern, truncate_from


def _budget(maxlen, n_specials, who):
    """How many text tokens fit in `maxlen` besides the start/end tokens."""
    if maxlen < n_specials:
        raise ValueError(
            f"{who}: `maxlen` must be >= {n_specials} to hold the {n_specials} start/end "
            f"tokens, got {maxlen}"
        )
    return maxlen - n_specials


def _truncate(budget, truncate_from, first, second=None, n_start=1, n_end=1):
    """Cut the lists in place, as if popping one token at a time from the
    longer list (the first on ties) until they hold `budget` tokens in all.
    An int `truncate_from` indexes a list as if its start/end tokens were
    there, clamped so these are never hit (`truncate_from` is checked)."""
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


def _pad_rows(tokenizer, rows, pattern, length, offsets, who):
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
        row = int(lengths.argmax())
        raise ValueError(
            f"{who}: row {row} has {longest} tokens, more than length={length}; "
            "pass maxlen to cut the rows"
        )
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
