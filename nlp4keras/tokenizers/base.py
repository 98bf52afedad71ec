"""What all tokenizers share: special tokens, truncation and `encode`."""


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
        """`(token_ids, segment_ids)` for one text or a pair of texts.

        pattern 'S*E*E': [CLS] A [SEP] B [SEP]; 'S*ES*E': [CLS] A [SEP] [CLS] B [SEP].
        With `maxlen`, tokens are removed one at a time from the longer text
        (the first on ties), at `truncate_from`: 'right', 'left', or an int
        index into that text's tokens counted with its start/end tokens.
        """
        if pattern not in ("S*E*E", "S*ES*E"):
            raise ValueError(f"pattern must be 'S*E*E' or 'S*ES*E', got {pattern!r}")
        _check_text(first_text, "first_text")
        first, second = self._content_tokens(first_text), None
        second_has_start = pattern == "S*ES*E"
        if second_text is not None:
            _check_text(second_text, "second_text")
            second = self._content_tokens(second_text)
        if maxlen is not None:
            n_specials = self._n_specials()
            if second is not None:
                n_specials += self._n_specials(second_has_start)
            _truncate(
                _budget(maxlen, n_specials),
                truncate_from,
                first,
                second,
                n_start=int(self._token_start is not None),
                n_end=int(self._token_end is not None),
            )
        token_ids = self.tokens_to_ids(self._wrap(first))
        segment_ids = [0] * len(token_ids)
        if second is not None:
            second_ids = self.tokens_to_ids(self._wrap(second, second_has_start))
            token_ids += second_ids
            segment_ids += [1] * len(second_ids)
        return token_ids, segment_ids

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def _content_tokens(self, text):
        """Tokens of `text` after `token_translate`, without start/end."""
        translate = self._token_translate
        return [translate.get(token) or token for token in self._tokenize(text)]

    def _wrap(self, content, with_start=True):
        """`content` with the start (if `with_start`) and end tokens around it."""
        start = [self._token_start] if with_start and self._token_start is not None else []
        end = [self._token_end] if self._token_end is not None else []
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
    """Pop tokens in place from the longer list (the first on ties) until the
    lists hold `budget` tokens in all. An int `truncate_from` indexes a list
    as if its start/end tokens were there, clamped so these are never hit."""
    if truncate_from not in ("right", "left") and not isinstance(truncate_from, int):
        raise ValueError(f"truncate_from must be 'right', 'left' or an int, got {truncate_from!r}")
    lists = [first] if second is None else [first, second]
    while sum(map(len, lists)) > budget:
        longest = max(lists, key=len)
        if truncate_from == "right":
            longest.pop()
        elif truncate_from == "left":
            longest.pop(0)
        else:
            position = truncate_from
            if position < 0:
                position += n_start + len(longest) + n_end
            longest.pop(min(max(position - n_start, 0), len(longest) - 1))
