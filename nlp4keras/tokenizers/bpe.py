"""Byte-level BPE tokenizer (GPT-2, Llama-3, SmolLM style) with the bert4keras
API (`BpeTokenizer`), over HF's `tokenizers` library.

Built from a `tokenizer.json` file, from a GGUF file (llama.cpp's format, which
carries the vocabulary, the merges and the special token ids as metadata), or
from a `tokenizers.Tokenizer`. The `tokenizers` package is imported when a
tokenizer is built, and `gguf` when it is read from a GGUF file.

GGUF files name their pre-tokenizer in `tokenizer.ggml.pre`; the kinds read
here, and how llama.cpp splits text for them before byte-level BPE:

- 'gpt2' (also 'default', or none given): GPT-2's regex;
- 'smollm' (and 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone',
  'minerva'): every digit on its own, then GPT-2's regex.
"""

import os

from nlp4keras import validation
from nlp4keras.tokenizers.base import TokenizerBase, _encode_options, _pad_rows
from nlp4keras.tokenizers.checks import (
    TextError,
    check_text,
    lone_surrogate,
    refuse,
    text_list,
    token_list,
)

# tokenizer.ggml.pre -> whether digits are split off one by one before the
# GPT-2 regex (llama.cpp's "\p{N}" first expression for these kinds).
_PRE_TOKENIZERS = {
    "default": False,
    "gpt2": False,
    "smollm": True,
    "starcoder": True,
    "refact": True,
    "command-r": True,
    "codeshell": True,
    "exaone": True,
    "minerva": True,
}
# llama.cpp's token types (tokenizer.ggml.token_type).
_CONTROL, _USER_DEFINED = 3, 4


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError as error:
        raise ImportError(
            "BpeTokenizer needs the tokenizers package: pip install tokenizers"
        ) from error
    return tokenizers


def _byte_spelling():
    """{byte: char}: GPT-2's byte-level alphabet (printable Latin-1 bytes stand
    for themselves, the other 68 bytes for chr(256), chr(257), ... in order)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    spelling = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in spelling:
            spelling[byte] = chr(256 + extra)
            extra += 1
    return spelling


class BpeTokenizer(TokenizerBase):
    """A byte-level BPE tokenizer with the bert4keras tokenizer API.

    `source` is a `tokenizer.json` path, a `.gguf` path (told apart by the
    file's first bytes) or a `tokenizers.Tokenizer`. Tokens are the BPE
    model's byte-level strings ('Ġworld' for ' world'), ids its ids. Special
    tokens typed in the text ('<|im_start|>') stay whole, as HF encodes them.

    As for GPT-style language models, no start or end token is added by
    default (`token_start=None, token_end=None`; SmolLM2's GGUF also says
    add_bos_token=False). To add them, pass tokens of the vocab, e.g.
    `token_start='<|im_start|>', token_end='<|im_end|>'` for SmolLM2.
    `bos_token` / `eos_token` are the GGUF file's (None for a tokenizer.json);
    `_token_pad` / `_token_unk` the GGUF file's pad and unknown tokens, or the
    BPE model's unk token ('' and None ids when absent); there is no mask
    token. `token_to_id` gives the unk id for a string that is not a token.

    `pre_tokenize` splits the text into words that are then joined by spaces,
    as for `SpTokenizer`. `decode` drops special tokens (unless
    `skip_special_tokens=False`) and undoes `token_translate`.
    `decode`, `id_to_token` and `ids_to_tokens` raise `TokenIdError` (a
    ValueError) for an id outside the vocab; text with a lone surrogate raises
    `TextError`.
    """

    def __init__(self, source, token_start=None, token_end=None, **kwargs):
        who = type(self).__name__
        super().__init__(token_start=token_start, token_end=token_end, **kwargs)
        tokenizers = _import_tokenizers()
        specials = {}
        self.pre_tokenizer_kind = None
        if isinstance(source, tokenizers.Tokenizer):
            self.tokenizer, where = source, "the given tokenizers.Tokenizer"
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            where = path
            if _is_gguf(path):
                self.tokenizer, specials, self.pre_tokenizer_kind = _from_gguf(path, tokenizers)
            else:
                self.tokenizer = _from_json(path, tokenizers)
        else:
            what = "a tokenizer.json or .gguf path, or a tokenizers.Tokenizer"
            refuse(source, "source", who, what)
        model = self.tokenizer.model
        if not isinstance(model, tokenizers.models.BPE):
            raise ValueError(
                f"{who}: {where} holds a {type(model).__name__} model, not BPE; use "
                "Tokenizer (WordPiece) or SpTokenizer (SentencePiece) for those"
            )
        self._source = where
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        self._vocab_size = len(vocab)
        high = max(vocab.values(), default=-1)
        self._id_range = (0, high, high + 1 != len(vocab))
        self._id_limit = high + 1
        self.bos_token = specials.get("bos")
        self.eos_token = specials.get("eos")
        self._token_unk = specials.get("unk", model.unk_token) or ""
        self._token_pad = specials.get("pad") or ""
        self._token_mask = ""
        for name in ("start", "end"):
            token = getattr(self, f"_token_{name}")
            if token is not None and token not in vocab:
                raise ValueError(
                    f"{who}: token_{name}={token!r} is not a token of {where}; pass "
                    f"token_{name}=None or one of its tokens"
                )
        for name in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{name}")
            setattr(self, f"_token_{name}_id", vocab.get(token) if token else None)
        for source_token, target in self._token_translate.items():
            if target not in vocab:
                raise ValueError(
                    f"{who}: `token_translate` maps {source_token!r} to {target!r}, which is "
                    f"not a token of {where}"
                )

    @property
    def vocab_size(self):
        """Number of tokens, added (special) tokens included."""
        return self._vocab_size

    def __repr__(self):
        return f"{type(self).__name__}({self._source!r}, vocab_size={self._vocab_size})"

    # -- tokens and ids --------------------------------------------------------

    def token_to_id(self, token):
        """The id of `token`; the unk id for anything else (a ValueError when
        the vocab has no unk token)."""
        token_id = self.tokenizer.token_to_id(token) if isinstance(token, str) else None
        if token_id is not None:
            return token_id
        check_text(token, "token", self._who("token_to_id"))
        if self._token_unk_id is None:
            raise ValueError(
                f"{self._who('token_to_id')}: {token!r} is not a token of {self._source}, "
                "which has no unk token to stand for it"
            )
        return self._token_unk_id

    def id_to_token(self, i):
        """The token of id `i`; an id outside the vocab raises `TokenIdError`."""
        i = self._checked_id(i, self._who("id_to_token"))
        return self.tokenizer.id_to_token(i)

    def _is_known_id(self, i):
        if not 0 <= i < self._id_limit:
            return False
        return not self._id_range[2] or self.tokenizer.id_to_token(i) is not None

    def _all_known(self, ids):
        if not ids:
            return True
        if min(ids) < 0 or max(ids) >= self._id_limit:
            return False
        return not self._id_range[2] or all(map(self._is_known_id, ids))

    def decode(self, ids, skip_special_tokens=True):
        """Text of `ids`: bytes joined and read as UTF-8 (an incomplete
        character becomes '\\ufffd'), special tokens dropped unless
        `skip_special_tokens=False`, `token_translate` undone."""
        who = self._who("decode")
        ids = self._checked_ids(ids, "ids", who)
        skip_special_tokens = validation.boolean(skip_special_tokens, "skip_special_tokens", who)
        if self._token_translate_inv:
            inverse = self._token_translate_inv
            tokens = [self.tokenizer.id_to_token(i) for i in ids]
            ids = [self.token_to_id(inverse.get(token) or token) for token in tokens]
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    # -- encoding --------------------------------------------------------------

    def _encoding(self, text):
        """HF's encoding of `text` (no special tokens added); TextError for a
        lone surrogate."""
        try:
            return self.tokenizer.encode(text, add_special_tokens=False)
        except TypeError:  # the Rust side takes only valid Unicode
            position = lone_surrogate(text)
            if position is None:
                raise
            raise TextError(text, position) from None

    def _model_text(self, text):
        if self._pre_tokenize is not None:
            return " ".join(self._pre_tokenized(text))
        return text

    def _tokenize(self, text):
        return self._encoding(self._model_text(text)).tokens

    def _content_ids(self, text):
        if self._pre_tokenize is not None or self._token_translate:
            return super()._content_ids(text)
        return self._encoding(text).ids

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
        """As `TokenizerBase.encode_batch`; the texts are encoded by HF's
        batch encoder (in parallel) when there is no `pre_tokenize`,
        `token_translate` or `return_offsets`."""
        arguments = (first_texts, second_texts, maxlen, pattern, truncate_from, length)
        if return_offsets is not False or self._pre_tokenize is not None or self._token_translate:
            return super().encode_batch(*arguments, return_offsets=return_offsets)
        who = self._who("encode_batch")
        maxlen, pattern, truncate_from = _encode_options(maxlen, pattern, truncate_from, who)
        first_texts = text_list(first_texts, "first_texts", who)
        if second_texts is not None:
            second_texts = text_list(second_texts, "second_texts", who)
            if len(second_texts) != len(first_texts):
                return super().encode_batch(*arguments)  # raises the base class's error
        length = validation.optional_integer(length, "length", who, minimum=0)
        try:
            firsts = self._batch_ids(first_texts)
            seconds = None if second_texts is None else self._batch_ids(second_texts)
        except TypeError:  # a lone surrogate: the base class names the row
            return super().encode_batch(*arguments)
        rows = []
        for i, first in enumerate(firsts):
            second = None if seconds is None else seconds[i]
            self._truncate_contents(first, second, maxlen, pattern, truncate_from, who)
            rows.append((first, second))
        return _pad_rows(self, rows, pattern, length, None, who)

    def _batch_ids(self, texts):
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [encoding.ids for encoding in encode(texts, add_special_tokens=False)]

    def rematch(self, text, tokens):
        """For each token, the indices of the characters of `text` it covers.

        `tokens` are those of `tokenize(text)`, possibly truncated, or
        `ids_to_tokens` of `encode(text)`. Start/end tokens get []. A token
        covers the characters whose bytes it holds, spaces included ('Ġ' is
        a space); where a character's bytes are split over several tokens,
        the last of them gets it. Tokens are matched to the tokens of `text`
        in order; with a repeated token, the earliest is taken. Not available
        with `pre_tokenize`.
        """
        who = self._who("rematch")
        check_text(text, "text", who)
        tokens = token_list(tokens, "tokens", who)
        if self._pre_tokenize is not None:  # offsets would be into the joined words
            raise NotImplementedError(f"{who} does not support pre_tokenize")
        try:
            encoding = self._encoding(text)
        except TextError as error:
            raise error.named(text, "text", who) from None
        pieces = encoding.tokens
        if self._token_translate:
            pieces = [self._token_translate.get(p) or p for p in pieces]
        offsets = encoding.offsets
        spans = []
        for k, (start, end) in enumerate(offsets):
            if k + 1 < len(offsets) and offsets[k + 1][0] < end:
                end = offsets[k + 1][0]  # the next token shares this character
            spans.append(list(range(start, max(start, end))))
        mapping, cursor = [], 0
        specials = {self._token_start, self._token_end} - {None}
        for token in tokens:
            match = None
            if token not in specials:
                for j in range(cursor, len(pieces)):
                    if pieces[j] == token:
                        match, cursor = j, j + 1
                        break
            mapping.append([] if match is None else spans[match])
        return mapping


def _is_gguf(path):
    """Whether the file at `path` starts with the GGUF magic."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"GGUF"
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder; pass its tokenizer.json or .gguf file") from None


def _from_json(path, tokenizers):
    """A `tokenizers.Tokenizer` from a tokenizer.json file."""
    try:
        return tokenizers.Tokenizer.from_file(path)
    except Exception as error:  # the Rust side raises a bare Exception
        raise ValueError(f"{path} is not a tokenizer.json file: {error}") from None


_GGUF_KEYS = {
    "model": "tokenizer.ggml.model",
    "pre": "tokenizer.ggml.pre",
    "tokens": "tokenizer.ggml.tokens",
    "merges": "tokenizer.ggml.merges",
    "token_type": "tokenizer.ggml.token_type",
    "bos": "tokenizer.ggml.bos_token_id",
    "eos": "tokenizer.ggml.eos_token_id",
    "unk": "tokenizer.ggml.unknown_token_id",
    "pad": "tokenizer.ggml.padding_token_id",
}


def _gguf_metadata(path):
    """The tokenizer metadata of a GGUF file, `{short name: value}` for the
    keys of `_GGUF_KEYS` it has (the file's memory map is released after)."""
    from nlp4keras.checkpoints.gguf_reader import metadata_value, open_gguf

    fields = open_gguf(path).fields
    return {name: metadata_value(fields[key]) for name, key in _GGUF_KEYS.items() if key in fields}


def _from_gguf(path, tokenizers):
    """`(tokenizers.Tokenizer, {bos/eos/unk/pad: token}, pre-tokenizer kind)`
    from the tokenizer metadata of a GGUF file."""
    metadata = _gguf_metadata(path)
    kind = metadata.get("model")
    if kind != "gpt2":
        what = "no tokenizer" if kind is None else f"tokenizer.ggml.model {kind!r}"
        raise ValueError(
            f"{path} holds {what}, not a byte-level BPE tokenizer ('gpt2'); "
            "BpeTokenizer reads only those"
        )
    pre = metadata.get("pre", "default")
    if pre not in _PRE_TOKENIZERS:
        known = ", ".join(repr(k) for k in _PRE_TOKENIZERS)
        raise ValueError(
            f"{path}: pre-tokenizer tokenizer.ggml.pre={pre!r} is not supported yet; "
            f"supported: {known}"
        )
    tokens = metadata.get("tokens")
    merges = metadata.get("merges", [])
    token_types = metadata.get("token_type") or [1] * len(tokens or ())
    for name, items, item_type in (
        ("tokens", tokens, str),
        ("merges", merges, str),
        ("token_type", token_types, int),
    ):
        if not isinstance(items, list) or not all(type(item) is item_type for item in items):
            raise ValueError(f"{path}: tokenizer.ggml.{name} is not a list of {item_type.__name__}")
    if not tokens or len(token_types) != len(tokens):
        raise ValueError(
            f"{path}: the tokenizer needs tokenizer.ggml.tokens and as many token types, got "
            f"{len(tokens or ())} tokens and {len(token_types)} types"
        )
    spelling = _byte_spelling()
    alphabet = set(spelling.values())
    vocab, spelled_as_is = {}, []
    for index, token in enumerate(tokens):
        as_is = set(token) <= alphabet
        if not as_is:  # plain text (a space, say): spell its UTF-8 bytes in the alphabet
            token = "".join(spelling[byte] for byte in token.encode("utf-8"))
        vocab[token] = index  # a repeated token keeps its last id, as transformers does
        spelled_as_is.append(as_is)
    pairs = []
    for n, merge in enumerate(merges):
        pair = tuple(merge.split(" "))
        if len(pair) != 2:
            raise ValueError(f"{path}: merge {n} is {merge!r}, not two tokens split by a space")
        pairs.append(pair)
    models, pre_tokenizers = tokenizers.models, tokenizers.pre_tokenizers
    try:
        tokenizer = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    except Exception as error:  # the Rust side raises a bare Exception
        raise ValueError(f"{path}: cannot build BPE from its vocab and merges: {error}") from None
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if _PRE_TOKENIZERS[pre]:
        digits = pre_tokenizers.Digits(individual_digits=True)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level])
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    # Control tokens stay whole in text and are special (dropped by decode);
    # user-defined ones stay whole too. A control token spelled outside the
    # byte alphabet is a mislabelled plain token and is left as such.
    added = tokenizers.AddedToken
    control = [
        added(token, normalized=False, special=True)
        for token, token_type, as_is in zip(tokens, token_types, spelled_as_is)
        if token_type == _CONTROL and as_is
    ]
    user = [
        added(token, normalized=False, special=False)
        for token, token_type, as_is in zip(tokens, token_types, spelled_as_is)
        if token_type == _USER_DEFINED and as_is
    ]
    tokenizer.add_special_tokens(control)
    tokenizer.add_tokens(user)
    specials = {}
    for name in ("bos", "eos", "unk", "pad"):
        token_id = metadata.get(name)
        if token_id is not None:
            if not (type(token_id) is int and 0 <= token_id < len(tokens)):
                raise ValueError(
                    f"{path}: the {name} token id {token_id!r} is not an id of its "
                    f"{len(tokens)} tokens"
                )
            specials[name] = tokenizer.id_to_token(token_id)
    return tokenizer, specials, pre
