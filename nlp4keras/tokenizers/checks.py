"""Argument checks shared by the tokenizers (texts, token lists, id lists,
special tokens), on top of `nlp4keras.validation`. They run once per call or
per text, never per character."""

from collections.abc import Mapping, Set

import numpy as np

from nlp4keras import validation

_INT = {int}


class TokenIdError(ValueError, IndexError, KeyError):
    """A token id that is not in the vocab. A ValueError; also an IndexError
    and a KeyError, which `SpTokenizer.id_to_token` and `Tokenizer.id_to_token`
    raised before, so that existing handlers still catch it."""

    __str__ = Exception.__str__  # KeyError would show the message quoted


class TextError(ValueError):
    """Text that a tokenizer cannot encode: it holds a lone surrogate (half of
    a UTF-16 pair, e.g. from bytes decoded with errors='surrogateescape')."""

    def __init__(self, text, position, name="text", who=None):
        self.text, self.position = text, position
        subject = f"{who}: `{name}`" if who else f"`{name}`"
        super().__init__(
            f"{subject} has a lone surrogate {text[position]!r} at position {position}, "
            "which is not valid Unicode and cannot be encoded; clean the text first, "
            "e.g. text.encode('utf-8', 'replace').decode('utf-8')"
        )

    def named(self, text, name, who):
        """The error for argument `name`, the `text` given to `who`; itself
        when that text has no lone surrogate (`pre_tokenize` made one)."""
        position = lone_surrogate(text)
        return self if position is None else TextError(text, position, name, who)


def lone_surrogate(text):
    """Index of the first lone surrogate in `text`, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def refuse(value, name, who, what):
    """Raise the validation module's TypeError: `name` must be `what`."""
    validation.instance(value, name, (), who, what=what)  # no type passes


def check_text(text, name, who):
    if not isinstance(text, str):
        validation.instance(text, name, str, who, what="a str")


def text_list(texts, name, who):
    """`texts` (a list, tuple or 1-D array of str) as a list."""
    ordered = hasattr(texts, "__len__") and hasattr(texts, "__getitem__")
    if isinstance(texts, (str, bytes, Mapping, Set)) or not ordered:
        refuse(texts, name, who, "a list of str")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            validation.instance(text, f"{name}[{i}]", str, who, what="a str")
    return texts


def token_list(tokens, name, who):
    """`tokens` (a list or tuple of str tokens) as a list."""
    if not isinstance(tokens, (list, tuple)):
        validation.instance(tokens, name, (list, tuple), who, what="a list of str tokens")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            validation.instance(token, f"{name}[{i}]", str, who, what="a str token")
    return list(tokens)


def optional_token(token, name, who):
    """A special token: None or a non-empty str."""
    if token is not None:
        validation.string(token, name, who)
    return token


def translation(token_translate, who):
    """`token_translate` (None or a {token: token} mapping) as a dict."""
    if token_translate is None:
        return {}
    validation.instance(token_translate, "token_translate", Mapping, who, what="a dict of str")
    for source, target in token_translate.items():
        if not isinstance(source, str) or not source:
            raise TypeError(
                f"{who}: `token_translate` keys must be non-empty str tokens, got {source!r} "
                f"({type(source).__name__})"
            )
        validation.string(target, f"token_translate[{source!r}]", who)
    return dict(token_translate)


def words_of(pre_tokenize, text, who):
    """The words `pre_tokenize` splits `text` into, checked to be str."""
    words = pre_tokenize(text)
    if isinstance(words, (str, bytes)) or not hasattr(words, "__iter__"):
        raise TypeError(
            f"{who}: `pre_tokenize` must return a list of str words, got {words!r:.80} "
            f"({type(words).__name__}) for the text {text!r:.80}"
        )
    words = list(words)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(
                f"{who}: `pre_tokenize` must return str words, got {word!r:.80} "
                f"({type(word).__name__}) for the text {text!r:.80}"
            )
    return words


def id_list(ids, name, who):
    """`ids` (a list, tuple or 1-D array of integer ids) as a list of ints;
    whole floats such as 5.0 are taken as ints."""
    if isinstance(ids, (list, tuple)):
        if set(map(type, ids)) <= _INT:  # the common case, checked at C speed
            return ids if isinstance(ids, list) else list(ids)
        return [validation.integer(i, f"{name}[{k}]", who) for k, i in enumerate(ids)]
    if isinstance(ids, (str, bytes, Mapping, Set)) or not hasattr(ids, "__len__"):
        refuse(ids, name, who, "a list or 1-D array of token ids")
    array = np.asarray(ids)  # numpy arrays, and tensors that convert to one
    if array.ndim != 1:
        raise ValueError(
            f"{who}: `{name}` must be one sequence of token ids (1-D), got shape "
            f"{array.shape}; for a batch, decode each row"
        )
    if array.dtype.kind in "iu":
        return array.tolist()
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        return array.astype(np.int64).tolist()
    return [validation.integer(i, f"{name}[{k}]", who) for k, i in enumerate(array.tolist())]


def _vocab_words(vocab_size, id_range):
    """'the vocab of 10 tokens (ids 0 to 9)', as far as it is known."""
    words = "the vocab" if vocab_size is None else f"the vocab of {vocab_size} tokens"
    if id_range is not None:
        low, high, gaps = id_range
        words += f" (ids {low} to {high}{', with gaps' if gaps else ''})"
    return words


def unknown_ids_error(ids, known, vocab_size, id_range, name, who):
    """The TokenIdError for the ids of `ids` for which `known(id)` is false."""
    bad = [(k, i) for k, i in enumerate(ids) if not known(i)]
    shown = ", ".join(f"{i} (at {k})" for k, i in bad[:5]) + (", ..." if len(bad) > 5 else "")
    return TokenIdError(
        f"{who}: `{name}` holds {len(bad)} id(s) outside {_vocab_words(vocab_size, id_range)}: "
        f"{shown}"
    )


def unknown_id_error(i, vocab_size, id_range, who):
    return TokenIdError(
        f"{who}: token id {i} is out of range: not in {_vocab_words(vocab_size, id_range)}"
    )
