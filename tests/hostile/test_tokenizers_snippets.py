"""Hostile inputs for the tokenizers and the data utilities (`snippets`).

Every `test_error_*` case checks the exception type and that the message
names the argument (or the file, or the position) and the problem; every
`test_output_*` case feeds an odd but legal input and checks the output
against an independent computation. Nothing here starts worker processes or
builds a model, so the file runs in a few seconds on every backend.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from nlp4keras.snippets import (
    DataGenerator,
    ViterbiDecoder,
    lowercase_and_normalize,
    parallel_apply,
    parallel_apply_generator,
    sequence_padding,
    strQ2B,
    text_segmentate,
    truncate_sequences,
)
from nlp4keras.tokenizers import SpTokenizer, Tokenizer, TokenizerBase, load_vocab, save_vocab

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

ASSETS = Path(__file__).resolve().parents[2] / ".assets"
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##b", "中", "hello"]
VOCAB = {token: i for i, token in enumerate(TOKENS)}


def ids(*tokens):
    return [VOCAB[token] for token in tokens]


@pytest.fixture(scope="module")
def tiny():
    return Tokenizer(VOCAB)


@pytest.fixture(scope="module")
def sp_path():
    path = ASSETS / "sentencepiece" / "botchan_en_unigram_1000.model"
    if not path.is_file():
        pytest.fail(f"SentencePiece model missing at {path}: run `make assets`")
    return path


@pytest.fixture(scope="module")
def sp(sp_path):
    return SpTokenizer(sp_path)


def case(call, error, message, name):
    """One hostile input: `call(tokenizer)` must raise `error` matching `message`."""
    return pytest.param(call, error, message, id=name)


# -- Tokenizer (WordPiece): methods -----------------------------------------------

TOKENIZER_CALLS = [
    case(lambda t: t.encode("a", maxlen=2.5), TypeError,
         r"Tokenizer.encode: `maxlen` must be an integer >= 0, got 2.5", "encode-maxlen-float"),
    case(lambda t: t.encode("a", maxlen="10"), TypeError,
         r"`maxlen` must be an integer >= 0, got '10' \(str\)", "encode-maxlen-str"),
    case(lambda t: t.encode("a", maxlen=True), TypeError,
         r"`maxlen` must be an integer >= 0, got True \(bool\)", "encode-maxlen-bool"),
    case(lambda t: t.encode("a", maxlen=-1), ValueError,
         r"`maxlen` must be an integer >= 0, got -1", "encode-maxlen-negative"),
    case(lambda t: t.encode("a", "b", maxlen=2), ValueError,
         r"`maxlen` must be >= 3 to hold the 3 start/end tokens, got 2", "encode-maxlen-too-small"),
    case(lambda t: t.encode("a", maxlen=float("nan")), TypeError,
         r"`maxlen` must be an integer >= 0, got nan", "encode-maxlen-nan"),
    case(lambda t: t.encode("a", pattern="SE"), ValueError,
         r"`pattern` must be one of 'S\*E\*E', 'S\*ES\*E', got 'SE'", "encode-pattern"),
    case(lambda t: t.encode("a", pattern=None), ValueError,
         r"`pattern` must be one of .*got None", "encode-pattern-none"),
    case(lambda t: t.encode("a", maxlen=5, truncate_from="middle"), ValueError,
         r"`truncate_from` must be 'right', 'left' or an int index, got 'middle'",
         "encode-truncate-from-str"),
    case(lambda t: t.encode("a", maxlen=5, truncate_from=1.5), TypeError,
         r"`truncate_from` must be 'right', 'left' or an int index, got 1.5",
         "encode-truncate-from-float"),
    case(lambda t: t.encode("a", maxlen=5, truncate_from=True), TypeError,
         r"`truncate_from` must be .*got True \(bool\)", "encode-truncate-from-bool"),
    case(lambda t: t.encode(None), TypeError,
         r"Tokenizer.encode: `first_text` must be a str \(or a list of str tokens\), got None",
         "encode-first-none"),
    case(lambda t: t.encode(b"a b"), TypeError,
         r"`first_text` must be a str .*got b'a b' \(bytes\)", "encode-first-bytes"),
    case(lambda t: t.encode("a", 3), TypeError,
         r"`second_text` must be a str .*got 3 \(int\)", "encode-second-int"),
    case(lambda t: t.encode(["a", 3]), TypeError,
         r"`first_text\[1\]` must be a str token, got 3", "encode-token-list-int"),
    case(lambda t: t.tokenize(123), TypeError,
         r"Tokenizer.tokenize: `text` must be a str, got 123 \(int\)", "tokenize-int"),
    case(lambda t: t.tokenize("a", maxlen="3"), TypeError,
         r"Tokenizer.tokenize: `maxlen` must be an integer", "tokenize-maxlen-str"),
    case(lambda t: t.encode_batch(["a"], maxlen=2.5), TypeError,
         r"Tokenizer.encode_batch: `maxlen` must be an integer >= 0, got 2.5", "batch-maxlen"),
    case(lambda t: t.encode_batch(["a"], length=2.5), TypeError,
         r"`length` must be an integer >= 0, got 2.5", "batch-length-float"),
    case(lambda t: t.encode_batch(["a"], length="5"), TypeError,
         r"`length` must be an integer >= 0, got '5'", "batch-length-str"),
    case(lambda t: t.encode_batch(["a"], length=-1), ValueError,
         r"`length` must be an integer >= 0, got -1", "batch-length-negative"),
    case(lambda t: t.encode_batch(["a", "a b c"], length=3), ValueError,
         r"row 1 has 5 tokens, more than length=3; pass maxlen", "batch-length-too-short"),
    case(lambda t: t.encode_batch("a b"), TypeError,
         r"`first_texts` must be a list of str, got 'a b' \(str\)", "batch-texts-str"),
    case(lambda t: t.encode_batch({"a": 1}), TypeError,
         r"`first_texts` must be a list of str, got \{'a': 1\} \(dict\)", "batch-texts-dict"),
    case(lambda t: t.encode_batch(x for x in ["a"]), TypeError,
         r"`first_texts` must be a list of str, got <generator", "batch-texts-generator"),
    case(lambda t: t.encode_batch(["a", None]), TypeError,
         r"`first_texts\[1\]` must be a str, got None", "batch-texts-none-item"),
    case(lambda t: t.encode_batch(["a", "b"], ["c"]), ValueError,
         r"got 2 first_texts but 1 second_texts", "batch-pair-count"),
    case(lambda t: t.encode_batch(["a"], "b"), TypeError,
         r"`second_texts` must be a list of str, got 'b'", "batch-second-str"),
    case(lambda t: t.encode_batch(["a"], return_offsets="yes"), TypeError,
         r"`return_offsets` must be True or False, got 'yes'", "batch-return-offsets"),
    case(lambda t: t(None), TypeError,
         r"Tokenizer.__call__: `texts` must be a str or a list of str, got None", "call-none"),
    case(lambda t: t("a", length=4), TypeError,
         r"Tokenizer.__call__: length apply to a list of texts", "call-str-length"),
    case(lambda t: t.decode([5, 99]), ValueError,
         r"Tokenizer.decode: `ids` holds 1 id\(s\) outside the vocab of 11 tokens "
         r"\(ids 0 to 10\): 99 \(at 1\)", "decode-id-too-large"),
    case(lambda t: t.decode([-1, 5]), ValueError,
         r"outside the vocab of 11 tokens \(ids 0 to 10\): -1 \(at 0\)", "decode-negative-id"),
    case(lambda t: t.decode(np.array([5, 11])), ValueError,
         r"outside the vocab of 11 tokens .*: 11 \(at 1\)", "decode-array-id-too-large"),
    case(lambda t: t.decode([5.5]), TypeError,
         r"`ids\[0\]` must be an integer, got 5.5", "decode-float-id"),
    case(lambda t: t.decode([True]), TypeError,
         r"`ids\[0\]` must be an integer, got True", "decode-bool-id"),
    case(lambda t: t.decode("abc"), TypeError,
         r"`ids` must be a list or 1-D array of token ids, got 'abc'", "decode-str"),
    case(lambda t: t.decode(None), TypeError,
         r"`ids` must be a list or 1-D array of token ids, got None", "decode-none"),
    case(lambda t: t.decode(np.array([[5, 6]])), ValueError,
         r"`ids` must be one sequence of token ids \(1-D\), got shape \(1, 2\)", "decode-2d"),
    case(lambda t: t.decode(np.array([5.0, np.nan])), TypeError,
         r"`ids\[1\]` must be an integer, got nan", "decode-nan-id"),
    case(lambda t: t.decode(None, tokens="abc"), TypeError,
         r"`tokens` must be a list of str tokens, got 'abc'", "decode-tokens-str"),
    case(lambda t: t.id_to_token(11), ValueError,
         r"Tokenizer.id_to_token: token id 11 is out of range: not in the vocab of 11 tokens",
         "id-to-token-too-large"),
    case(lambda t: t.id_to_token(-1), ValueError,
         r"token id -1 is out of range", "id-to-token-negative"),
    case(lambda t: t.id_to_token(1.5), TypeError,
         r"`i` must be an integer, got 1.5", "id-to-token-float"),
    case(lambda t: t.ids_to_tokens(5), TypeError,
         r"Tokenizer.ids_to_tokens: `ids` must be a list or 1-D array", "ids-to-tokens-int"),
    case(lambda t: t.ids_to_tokens([0, 50]), ValueError,
         r"Tokenizer.ids_to_tokens: `ids` holds 1 id\(s\) outside .*: 50 \(at 1\)",
         "ids-to-tokens-unknown"),
    case(lambda t: t.token_to_id(5), TypeError,
         r"Tokenizer.token_to_id: `token` must be a str, got 5 \(int\)", "token-to-id-int"),
    case(lambda t: t.token_to_id(["a"]), TypeError,
         r"`token` must be a str, got \['a'\] \(list\)", "token-to-id-list"),
    case(lambda t: t.tokens_to_ids("abc"), TypeError,
         r"Tokenizer.tokens_to_ids: `tokens` must be a list of str tokens, got 'abc'",
         "tokens-to-ids-str"),
    case(lambda t: t.rematch(None, ["a"]), TypeError,
         r"Tokenizer.rematch: `text` must be a str, got None", "rematch-text-none"),
    case(lambda t: t.rematch("a b", "ab"), TypeError,
         r"Tokenizer.rematch: `tokens` must be a list of str tokens, got 'ab'",
         "rematch-tokens-str"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", TOKENIZER_CALLS)
def test_error_tokenizer_methods(tiny, call, error, message):
    with pytest.raises(error, match=message):
        call(tiny)


def test_error_id_errors_are_still_index_and_key_errors(tiny, sp):
    # the new rule raises a ValueError; old handlers for IndexError/KeyError still work
    with pytest.raises(KeyError, match=r"token id 11 is out of range"):
        tiny.id_to_token(11)
    with pytest.raises(IndexError, match=r"token id 1000 is out of range"):
        sp.id_to_token(1000)


# -- Tokenizer (WordPiece): constructor -----------------------------------------


def without(*dropped):
    return {token: i for i, token in enumerate(t for t in TOKENS if t not in dropped)}


TOKENIZER_BUILDS = [
    case(lambda: Tokenizer(None), TypeError,
         r"Tokenizer: `token_dict` must be a vocab file path or a \{token: id\} dict, got None",
         "vocab-none"),
    case(lambda: Tokenizer(TOKENS), TypeError,
         r"`token_dict` must be a vocab file path or a \{token: id\} dict, got \['\[PAD\]'",
         "vocab-list"),
    case(lambda: Tokenizer({}), ValueError, r"Tokenizer: `token_dict` is empty", "vocab-empty"),
    case(lambda: Tokenizer({**VOCAB, "d": "11"}), TypeError,
         r"`token_dict\['d'\]` must be an integer >= 0, got '11' \(str\)", "vocab-id-str"),
    case(lambda: Tokenizer({**VOCAB, "d": -3}), ValueError,
         r"`token_dict\['d'\]` must be an integer >= 0, got -3", "vocab-id-negative"),
    case(lambda: Tokenizer({**VOCAB, "d": 5}), ValueError,
         r"`token_dict` gives id 5 to both 'a' and 'd'", "vocab-id-shared"),
    case(lambda: Tokenizer({**VOCAB, 7: 11}), TypeError,
         r"`token_dict` holds the token 7 \(int\); tokens must be non-empty str",
         "vocab-token-int"),
    case(lambda: Tokenizer({**VOCAB, "": 11}), ValueError,
         r"`token_dict` holds the token '' \(str\)", "vocab-token-empty"),
    case(lambda: Tokenizer(VOCAB, do_lower_case="no"), TypeError,
         r"Tokenizer: `do_lower_case` must be True or False, got 'no'", "do-lower-case-str"),
    case(lambda: Tokenizer(VOCAB, word_maxlen=0), ValueError,
         r"Tokenizer: `word_maxlen` must be an integer >= 1, got 0", "word-maxlen-zero"),
    case(lambda: Tokenizer(VOCAB, word_maxlen=2.5), TypeError,
         r"`word_maxlen` must be an integer >= 1, got 2.5", "word-maxlen-float"),
    case(lambda: Tokenizer(VOCAB, token_start=5), TypeError,
         r"Tokenizer: `token_start` must be a string, got 5", "token-start-int"),
    case(lambda: Tokenizer(VOCAB, token_end=""), ValueError,
         r"Tokenizer: `token_end` must be a non-empty string", "token-end-empty"),
    case(lambda: Tokenizer(without("[SEP]", "[UNK]")).encode("a"), ValueError,
         r"Tokenizer: `token_end` '\[SEP\]' is not in the vocab, so it is encoded as the unk "
         r"token '\[UNK\]'.*pass token_end=None", "token-end-and-unk-missing"),
    case(lambda: Tokenizer(VOCAB, pre_tokenize=5), TypeError,
         r"`pre_tokenize` must be callable or None, got 5", "pre-tokenize-int"),
    case(lambda: Tokenizer(VOCAB, pre_tokenize=lambda text: text).tokenize("ab c"), TypeError,
         r"`pre_tokenize` must return a list of str words, got 'ab c' \(str\)",
         "pre-tokenize-returns-str"),
    case(lambda: Tokenizer(VOCAB, pre_tokenize=lambda text: [1]).encode("ab"), TypeError,
         r"`pre_tokenize` must return str words, got 1 \(int\)", "pre-tokenize-returns-ints"),
    case(lambda: Tokenizer(VOCAB, token_translate=["a"]), TypeError,
         r"`token_translate` must be a dict of str, got \['a'\]", "translate-list"),
    case(lambda: Tokenizer(VOCAB, token_translate={1: "a"}), TypeError,
         r"`token_translate` keys must be non-empty str tokens, got 1", "translate-int-key"),
    case(lambda: Tokenizer(VOCAB, token_translate={"a": None}), TypeError,
         r"`token_translate\['a'\]` must be a string, got None", "translate-none-value"),
    case(lambda: Tokenizer(VOCAB, token_translate={"a": "zzz"}), ValueError,
         r"`token_translate` maps 'a' to 'zzz', which is not in the vocab",
         "translate-outside-vocab"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", TOKENIZER_BUILDS)
def test_error_tokenizer_constructor(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- SpTokenizer --------------------------------------------------------------------

SP_CALLS = [
    case(lambda t, path: SpTokenizer(None), TypeError,
         r"SpTokenizer: `sp_model_path` must be a file path, got None", "sp-path-none"),
    case(lambda t, path: SpTokenizer(path, token_end=5), TypeError,
         r"SpTokenizer: `token_end` must be a string, got 5", "sp-token-end-int"),
    case(lambda t, path: SpTokenizer(path, token_translate={"▁a": "no such piece"}), ValueError,
         r"`token_translate` maps '▁a' to 'no such piece', which is not a piece",
         "sp-translate-outside-vocab"),
    case(lambda t, path: t.encode("a b", maxlen=2.5), TypeError,
         r"SpTokenizer.encode: `maxlen` must be an integer >= 0, got 2.5", "sp-maxlen-float"),
    case(lambda t, path: t.encode_batch(["a"], maxlen="3"), TypeError,
         r"SpTokenizer.encode_batch: `maxlen` must be an integer >= 0, got '3'", "sp-maxlen-str"),
    case(lambda t, path: t.decode([5, 1000]), ValueError,
         r"SpTokenizer.decode: `ids` holds 1 id\(s\) outside the vocab of 1000 tokens "
         r"\(ids 0 to 999\): 1000 \(at 1\)", "sp-decode-id-too-large"),
    case(lambda t, path: t.decode([-1]), ValueError,
         r"outside the vocab of 1000 tokens \(ids 0 to 999\): -1 \(at 0\)", "sp-decode-negative"),
    case(lambda t, path: t.decode([5.5]), TypeError,
         r"SpTokenizer.decode: `ids\[0\]` must be an integer, got 5.5", "sp-decode-float"),
    case(lambda t, path: t.id_to_token(1000), ValueError,
         r"SpTokenizer.id_to_token: token id 1000 is out of range: not in the vocab of 1000",
         "sp-id-to-token"),
    case(lambda t, path: t.token_to_id(None), TypeError,
         r"SpTokenizer.token_to_id: `token` must be a str, got None", "sp-token-to-id-none"),
    case(lambda t, path: t.tokenize("ab\ud800c"), ValueError,
         r"SpTokenizer.tokenize: `text` has a lone surrogate '\\ud800' at position 2",
         "sp-surrogate-tokenize"),
    case(lambda t, path: t.encode("ok", "x\udfffy"), ValueError,
         r"SpTokenizer.encode: `second_text` has a lone surrogate '\\udfff' at position 1",
         "sp-surrogate-encode"),
    case(lambda t, path: t.encode_batch(["fine", "fine"], ["fine", "\ud800"]), ValueError,
         r"SpTokenizer.encode_batch: `second_texts\[1\]` has a lone surrogate '\\ud800' "
         r"at position 0", "sp-surrogate-batch"),
    case(lambda t, path: t.rematch("a\ud800", ["▁a"]), ValueError,
         r"SpTokenizer.rematch: `text` has a lone surrogate '\\ud800' at position 1",
         "sp-surrogate-rematch"),
    case(lambda t, path: t.token_to_id("\ud800"), ValueError,
         r"SpTokenizer.token_to_id: `token` has a lone surrogate '\\ud800' at position 0",
         "sp-surrogate-token"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", SP_CALLS)
def test_error_sp_tokenizer(sp, sp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(sp, sp_path)


# -- vocab files ----------------------------------------------------------------------


def vocab_file(tmp_path, data):
    path = tmp_path / "vocab.txt"
    path.write_bytes(data)
    return path


VOCAB_FILES = [
    pytest.param(b"[PAD]\n[UNK]\ncaf\xe9\n",
                 r"is not valid utf-8: bytes b'\\xe9' at byte offset 15 \(line 3\)", id="latin-1"),
    pytest.param(b"[PAD]\n\na\n", r"has 1 empty line\(s\) \(line 2\)", id="empty-line"),
    pytest.param(b"[PAD]\na\n  \n", r"has 1 empty line\(s\) \(line 3\)", id="spaces-line"),
    pytest.param(b"[PAD]\na\nb\na\n", r"has the token 'a' on line 2 and again on line 4",
                 id="duplicate"),
]  # fmt: skip


@pytest.mark.parametrize("data, message", VOCAB_FILES)
def test_error_bad_vocab_file(tmp_path, data, message):
    path = vocab_file(tmp_path, data)
    with pytest.raises(ValueError, match=re.escape(f"vocab file {path} ") + message):
        load_vocab(path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Tokenizer(str(path))  # the same error through the constructor


VOCAB_CALLS = [
    case(lambda path: load_vocab(None), TypeError,
         r"load_vocab: `dict_path` must be a file path \(str or Path\), got None",
         "load-path-none"),
    case(lambda path: load_vocab(path, encoding="nope"), ValueError,
         r"load_vocab: `encoding` 'nope' is not a known text encoding", "load-encoding"),
    case(lambda path: load_vocab(path, simplified="yes"), TypeError,
         r"load_vocab: `simplified` must be True or False, got 'yes'", "load-simplified"),
    case(lambda path: load_vocab(path, simplified=True, startswith="[CLS]"), TypeError,
         r"load_vocab: `startswith` must be a list of str tokens, got '\[CLS\]'",
         "load-startswith-str"),
    case(lambda path: load_vocab(path.parent / "missing.txt"), FileNotFoundError,
         r"vocab file not found: .*missing.txt", "load-missing"),
    case(lambda path: save_vocab(path, None), TypeError,
         r"save_vocab: `token_dict` must be a vocab file path or a \{token: id\} dict, got None",
         "save-none"),
    case(lambda path: save_vocab(path, {"a": 0, "b": 2}), ValueError,
         r"save_vocab: the ids of `token_dict` must be 0 to 1 .*but id 1 is missing", "save-gap"),
    case(lambda path: save_vocab(path, {"a": 0, "b": 0}), ValueError,
         r"save_vocab: `token_dict` gives id 0 to both 'a' and 'b'", "save-shared-id"),
    case(lambda path: save_vocab(path, {"a\nb": 0}), ValueError,
         r"save_vocab: token 'a\\nb' \(id 0\) would not read back as itself", "save-newline"),
    case(lambda path: save_vocab(path, {"a ": 0}), ValueError,
         r"save_vocab: token 'a ' \(id 0\) would not read back as itself", "save-trailing-space"),
    case(lambda path: save_vocab(path, {"a": 0, "中": 1}, encoding="latin-1"), ValueError,
         r"save_vocab: token '中' cannot be written in encoding 'latin-1'", "save-encoding"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", VOCAB_CALLS)
def test_error_vocab_arguments(tmp_path, call, error, message):
    path = vocab_file(tmp_path, b"[CLS]\na\n")
    with pytest.raises(error, match=message):
        call(path)
    assert path.read_bytes() == b"[CLS]\na\n"  # a refused save writes nothing


# -- sequence_padding and truncate_sequences ---------------------------------------------

PADDING_CALLS = [
    case(lambda: sequence_padding(None), TypeError,
         r"sequence_padding: `inputs` must be a list of sequences .*got None", "pad-inputs-none"),
    case(lambda: sequence_padding(5), TypeError,
         r"`inputs` must be a list of sequences .*got 5 \(int\)", "pad-inputs-int"),
    case(lambda: sequence_padding({"a": [1]}), TypeError,
         r"`inputs` must be a list of sequences .*\(dict\)", "pad-inputs-dict"),
    case(lambda: sequence_padding([[1], None]), TypeError,
         r"sequence_padding: inputs\[1\] is None \(NoneType\); expected a sequence",
         "pad-none-item"),
    case(lambda: sequence_padding([[1, None]]), TypeError,
         r"inputs\[0\]\[1\] is None \(NoneType\)", "pad-none-inside"),
    case(lambda: sequence_padding([{"a": 1}]), TypeError,
         r"inputs\[0\] is \{'a': 1\} \(dict\)", "pad-dict-item"),
    case(lambda: sequence_padding([{1, 2}]), TypeError,
         r"inputs\[0\] is \{1, 2\} \(set\)", "pad-set-item"),
    case(lambda: sequence_padding(["abc", "de"]), TypeError,
         r"inputs\[0\] is 'abc' \(str\); expected a sequence \(list or array\) nested 1 deep",
         "pad-str-item"),
    case(lambda: sequence_padding([[1], [2, 3]], value=None), TypeError,
         r"sequence_padding: `value` must be a number or a string to pad with, got None",
         "pad-value-none"),
    case(lambda: sequence_padding([[1], [2, 3]], value=[0]), TypeError,
         r"`value` must be a number or a string to pad with, got \[0\]", "pad-value-list"),
    case(lambda: sequence_padding([[1], [2, 3]], value="x"), TypeError,
         r"`value` 'x' cannot pad output of dtype int64; pass a number", "pad-value-str-for-ints"),
    case(lambda: sequence_padding([["a"], ["b", "c"]]), TypeError,
         r"`value` 0 cannot pad output of dtype <U1; pass a string", "pad-value-int-for-strings"),
    case(lambda: sequence_padding([[1], [2, 3]], value=1.5), ValueError,
         r"`value` 1.5 would change in the output dtype int64", "pad-value-fraction"),
    case(lambda: sequence_padding([[1], [2, 3]], value=float("nan")), ValueError,
         r"`value` nan would change in the output dtype int64", "pad-value-nan-for-ints"),
    case(lambda: sequence_padding([np.ones(1, np.uint8), np.ones(2, np.uint8)], value=300),
         ValueError, r"`value` 300 would change in the output dtype uint8", "pad-value-overflow"),
    case(lambda: sequence_padding([[1], [2, 3]], length=2.5), TypeError,
         r"sequence_padding: `length` must be an integer >= 0, got 2.5", "pad-length-float"),
    case(lambda: sequence_padding([[1]], length=-1), ValueError,
         r"`length` must be an integer >= 0, got -1", "pad-length-negative"),
    case(lambda: sequence_padding([[[1]]], length=(2, "3"), seq_dims=2), TypeError,
         r"`length\[1\]` must be an integer >= 0, got '3'", "pad-length-entry-str"),
    case(lambda: sequence_padding([[1]], mode=None), ValueError,
         r"`mode` must be one of 'post', 'pre', got None", "pad-mode-none"),
    case(lambda: sequence_padding([[1]], seq_dims=1.5), TypeError,
         r"`seq_dims` must be an integer >= 1, got 1.5", "pad-seq-dims-float"),
    case(lambda: sequence_padding([[1]], seq_dims="1"), TypeError,
         r"`seq_dims` must be an integer >= 1, got '1'", "pad-seq-dims-str"),
    case(lambda: sequence_padding([[1]], dtype="nope"), TypeError,
         r"`dtype` 'nope' is not a numpy dtype", "pad-dtype"),
    case(lambda: sequence_padding([[1.5, 2.0]], dtype="int32"), ValueError,
         r"inputs\[0\] holds float64 values that dtype int32 cannot hold unchanged",
         "pad-dtype-cuts-floats"),
    case(lambda: sequence_padding([[70000]], dtype="int16"), ValueError,
         r"inputs\[0\] holds int64 values that dtype int16 cannot hold unchanged",
         "pad-dtype-overflow"),
    case(lambda: sequence_padding([[1], ["a"]], value=""), TypeError,
         r"inputs mix strings \(inputs\[1\]\) and numbers \(inputs\[0\]\)", "pad-mixed-items"),
    case(lambda: sequence_padding([[1, "a"]], value=""), TypeError,
         r"inputs\[0\] mixes strings and numbers \(e.g. 1\)", "pad-mixed-within-item"),
    case(lambda: sequence_padding([[[1, 2], [3]]]), ValueError,
         r"inputs differ in shape after the first seq_dims=1 dims: inputs\[0\]\[0\] has \(2,\)",
         "pad-ragged-tail"),
    case(lambda: sequence_padding([[[[1, 2], [3]]]]), ValueError,
         r"inputs\[0\]\[0\] is ragged after the first seq_dims=1 dims", "pad-ragged-deeper"),
    case(lambda: sequence_padding([[1]], length_buckets="abc"), TypeError,
         r"`length_buckets` must be a list of integers, got 'abc'", "pad-buckets-str"),
    case(lambda: sequence_padding([[1]], multiple_of=2.5), TypeError,
         r"`multiple_of` must be an integer >= 1, got 2.5", "pad-multiple-of-float"),
    case(lambda: truncate_sequences(2.5, -1, [1, 2, 3]), TypeError,
         r"truncate_sequences: `maxlen` must be an integer >= 0, got 2.5", "truncate-maxlen-float"),
    case(lambda: truncate_sequences("2", -1, [1, 2, 3]), TypeError,
         r"`maxlen` must be an integer >= 0, got '2'", "truncate-maxlen-str"),
    case(lambda: truncate_sequences(1, "x", [1, 2, 3]), TypeError,
         r"truncate_sequences: `indices` must be an integer, got 'x'", "truncate-index-str"),
    case(lambda: truncate_sequences(1, [-1, 0.5], [1, 2], [3]), TypeError,
         r"`indices\[1\]` must be an integer, got 0.5", "truncate-index-float"),
    case(lambda: truncate_sequences(1, -1, 5), TypeError,
         r"truncate_sequences: sequence 0 must be a list \(or None\), got 5 \(int\)",
         "truncate-sequence-int"),
    case(lambda: truncate_sequences(1, -1, "abc"), TypeError,
         r"sequence 0 must be a list \(or None\), got 'abc' \(str\)", "truncate-sequence-str"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", PADDING_CALLS)
def test_error_padding_and_truncation(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- text helpers, DataGenerator, parallel_apply, ViterbiDecoder ---------------------------


def square(x):
    return x * x


SNIPPET_CALLS = [
    case(lambda: text_segmentate("abc\ndef", 2.5), TypeError,
         r"text_segmentate: `maxlen` must be an integer >= 1, got 2.5", "segmentate-maxlen-float"),
    case(lambda: text_segmentate("abc\ndef", "3"), TypeError,
         r"`maxlen` must be an integer >= 1, got '3'", "segmentate-maxlen-str"),
    case(lambda: text_segmentate("abc\ndef", 0), ValueError,
         r"`maxlen` must be an integer >= 1, got 0", "segmentate-maxlen-zero"),
    case(lambda: text_segmentate(None, 3), TypeError,
         r"text_segmentate: `text` must be a str, got None", "segmentate-text-none"),
    case(lambda: text_segmentate("abc\ndef", 3, seps=5), TypeError,
         r"`seps` must be a str or a list of str, got 5", "segmentate-seps-int"),
    case(lambda: text_segmentate("abc\ndef", 3, seps=["\n", ""]), ValueError,
         r"`seps\[1\]` must be a non-empty string", "segmentate-seps-empty"),
    case(lambda: text_segmentate("abc\ndef", 3, strips=5), TypeError,
         r"`strips` must be a str of characters or None, got 5", "segmentate-strips-int"),
    case(lambda: strQ2B(None), TypeError, r"strQ2B: `ustring` must be a str, got None",
         "strq2b-none"),
    case(lambda: strQ2B(b"abc"), TypeError, r"strQ2B: `ustring` must be a str, got b'abc'",
         "strq2b-bytes"),
    case(lambda: lowercase_and_normalize(3), TypeError,
         r"lowercase_and_normalize: `text` must be a str, got 3", "lowercase-int"),
    case(lambda: DataGenerator([1], batch_size=2.5), TypeError,
         r"DataGenerator: `batch_size` must be an integer >= 1, got 2.5", "generator-batch-float"),
    case(lambda: DataGenerator([1], batch_size="2"), TypeError,
         r"`batch_size` must be an integer >= 1, got '2'", "generator-batch-str"),
    case(lambda: DataGenerator([1], buffer_size=-5), ValueError,
         r"`buffer_size` must be an integer >= 1, got -5", "generator-buffer-negative"),
    case(lambda: DataGenerator([1], sort_window=0), ValueError,
         r"`sort_window` must be an integer >= 1, got 0", "generator-sort-window"),
    case(lambda: DataGenerator([1], length_fn=5), TypeError,
         r"`length_fn` must be callable or None, got 5", "generator-length-fn"),
    case(lambda: DataGenerator(None), TypeError,
         r"DataGenerator: `data` must be a list or an iterable of items", "generator-data-none"),
    case(lambda: DataGenerator("train.json"), TypeError,
         r"`data` must be .*not a str: pass the items, not a file name", "generator-data-str"),
    case(lambda: DataGenerator([1, 2]).sample(random="yes"), TypeError,
         r"DataGenerator.sample: `random` must be True or False, got 'yes'", "generator-random"),
    case(lambda: parallel_apply(square, [1], workers=2.5, max_queue_size=1, dummy=True), TypeError,
         r"parallel_apply: `workers` must be an integer >= 1, got 2.5", "parallel-workers-float"),
    case(lambda: parallel_apply(square, [1], workers=1, max_queue_size=0, dummy=True), ValueError,
         r"`max_queue_size` must be an integer >= 1, got 0", "parallel-queue-zero"),
    case(lambda: parallel_apply(square, [1], 1, 1, dummy="no"), TypeError,
         r"`dummy` must be True or False, got 'no'", "parallel-dummy-str"),
    case(lambda: parallel_apply(square, [1], 1, 1, dummy=True, unordered="no"), TypeError,
         r"`unordered` must be True or False, got 'no'", "parallel-unordered-str"),
    case(lambda: parallel_apply(square, [1], 1, 1, dummy=True, callback=5), TypeError,
         r"`callback` must be callable or None, got 5", "parallel-callback-int"),
    case(lambda: parallel_apply(square, None, 1, 1, dummy=True), TypeError,
         r"`iterable` must be an iterable of items, got None", "parallel-iterable-none"),
    case(lambda: parallel_apply(5, [1], 1, 1, dummy=True), TypeError,
         r"parallel_apply: `func` must be callable, got 5", "parallel-func-int"),
    case(lambda: parallel_apply(square, [1], 2, 1, random_seeds=1.5), TypeError,
         r"`random_seeds` must be True, False, None, an int or a list of ints, got 1.5",
         "parallel-seeds-float"),
    case(lambda: parallel_apply(square, [1], 2, 1, random_seeds=[1, True]), TypeError,
         r"`random_seeds\[1\]` must be an integer >= 0 and < 4294967296, got True",
         "parallel-seeds-bool"),
    case(lambda: parallel_apply(square, [1], 1, 1, random_seeds=-1), ValueError,
         r"`random_seeds` must be an integer >= 0 and <= 4294967295, got -1",
         "parallel-seeds-negative"),
    case(lambda: parallel_apply(square, [1], 1, 1, start_method=None), ValueError,
         r"`start_method` must be one of .*got None", "parallel-start-method"),
    case(lambda: parallel_apply_generator(square, [1], 0, 1), ValueError,
         r"parallel_apply_generator: `workers` must be an integer >= 1, got 0",
         "parallel-generator-workers"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2, 2))), ValueError,
         r"ViterbiDecoder: `trans` must be a square \[K, K\] matrix with K >= 1, got shape "
         r"\(2, 2, 2\)", "viterbi-trans-3d"),
    case(lambda: ViterbiDecoder(np.zeros((0, 0))), ValueError,
         r"`trans` must be a square \[K, K\] matrix with K >= 1, got shape \(0, 0\)",
         "viterbi-trans-empty"),
    case(lambda: ViterbiDecoder(None), TypeError,
         r"ViterbiDecoder: `trans` must be an array of numbers, got None", "viterbi-trans-none"),
    case(lambda: ViterbiDecoder([["a", "b"], ["c", "d"]]), TypeError,
         r"`trans` must be an array of numbers", "viterbi-trans-strings"),
    case(lambda: ViterbiDecoder(np.full((2, 2), np.nan)), ValueError,
         r"`trans` holds NaN or \+inf scores", "viterbi-trans-nan"),
    case(lambda: ViterbiDecoder([[0, np.inf], [0, 0]]), ValueError,
         r"`trans` holds NaN or \+inf scores", "viterbi-trans-inf"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2))).decode([[np.nan, 0], [0, 0]]), ValueError,
         r"ViterbiDecoder.decode: `nodes` holds NaN or \+inf scores", "viterbi-nodes-nan"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2))).decode(np.zeros(2)), ValueError,
         r"`nodes` must have shape \[steps >= 1, 2\], got \(2,\)", "viterbi-nodes-1d"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2))).decode(np.zeros((3, 5))), ValueError,
         r"`nodes` must have shape \[steps >= 1, 2\], got \(3, 5\)", "viterbi-nodes-labels"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2)), starts=[1.5]), TypeError,
         r"ViterbiDecoder: `starts\[0\]` must be an integer, got 1.5", "viterbi-starts-float"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2)), starts="0"), TypeError,
         r"`starts` must be a list of integers, got '0'", "viterbi-starts-str"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2)), ends=[2]), ValueError,
         r"`ends` has label ids \[2\] outside \[0, 2\)", "viterbi-ends-outside"),
    case(lambda: ViterbiDecoder([[0, 1], [2, 0]], starts=[0], ends=[1]).decode(np.zeros((1, 2))),
         ValueError, r"ViterbiDecoder.decode: no label path is allowed: every path has score -inf",
         "viterbi-disjoint-starts-ends"),
    case(lambda: ViterbiDecoder(np.full((2, 2), -np.inf)).decode(np.zeros((3, 2))),
         ValueError, r"no label path is allowed", "viterbi-every-transition-forbidden"),
    case(lambda: ViterbiDecoder([[0, 1], [-np.inf, 0]], [1], [0]).decode(np.ones((2, 2))),
         ValueError, r"no label path is allowed", "viterbi-only-path-forbidden"),
    case(lambda: ViterbiDecoder(np.zeros((2, 2))).decode([[-np.inf, -np.inf], [0, 0]]),
         ValueError, r"no label path is allowed", "viterbi-every-label-impossible"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, message", SNIPPET_CALLS)
def test_error_snippets(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- odd but legal inputs: outputs checked against an independent computation -----------


def test_output_whole_numbers_are_ints(tiny):
    # 3 + 2 text tokens and 3 specials in maxlen 6: the first text (the longer)
    # loses 2 tokens, popped at index 1 counted with [CLS], i.e. its first token
    expected = ids("[CLS]", "c", "[SEP]", "a", "b", "[SEP]"), [0, 0, 0, 1, 1, 1]
    assert tiny.encode("a b c", "a b", maxlen=6, truncate_from=1) == expected
    assert tiny.encode("a b c", "a b", maxlen=6.0, truncate_from=np.int64(1)) == expected
    assert tiny.encode("a b c", "a b", maxlen=np.int32(6), truncate_from=1.0) == expected


def test_output_decode_takes_arrays_and_whole_floats(tiny):
    # words joined by spaces, none before a CJK char; '##b' continues 'a'
    assert tiny.decode([5, 6, 9]) == "a b中"
    assert tiny.decode(np.array([5, 6, 9])) == "a b中"
    assert tiny.decode(np.array([5.0, 6.0, 9.0])) == "a b中"
    assert tiny.decode((2, 5, 8, 3)) == "ab"


def test_output_decode_of_special_ids_is_empty(tiny, sp, sp_path):
    assert tiny.decode(ids("[CLS]", "[PAD]", "[SEP]")) == ""
    reference = spm.SentencePieceProcessor(model_file=str(sp_path))
    specials = [i for i in range(1000) if reference.is_control(i) or reference.is_unknown(i)]
    assert specials and sp.decode(specials) == ""


def test_output_lone_surrogate_is_an_unknown_word_for_wordpiece(tiny):
    # WordPiece treats '\ud800' like any char missing from the vocab: its word is [UNK]
    assert tiny.tokenize("a x\ud800y b") == ["[CLS]", "a", "[UNK]", "b", "[SEP]"]
    assert tiny.rematch("a x\ud800y b", ["a", "[UNK]", "b"]) == [[0], [2, 3, 4], [6]]


def test_output_empty_batches(tiny, sp):
    for tokenizer in (tiny, sp):
        token_ids, segment_ids = tokenizer.encode_batch([], length=0)
        assert token_ids.shape == segment_ids.shape == (0, 0)
        assert tokenizer.decode([]) == ""


def test_output_tuple_and_array_batches(tiny):
    expected = tiny.encode_batch(["a b", "c"])[0]
    assert np.array_equal(tiny.encode_batch(("a b", "c"))[0], expected)
    assert np.array_equal(tiny.encode_batch(np.array(["a b", "c"]))[0], expected)
    assert expected.tolist() == [ids("[CLS]", "a", "b", "[SEP]"), ids("[CLS]", "c", "[SEP]") + [0]]


def test_output_real_vocab_keeps_whitespace_tokens():
    path = ASSETS / "bert_chinese" / "vocab.txt"
    lines = path.read_bytes().decode("utf-8").split("\n")  # ids are line numbers
    vocab = load_vocab(path)
    assert len(vocab) == 21128 and "" not in vocab
    assert vocab["\u2028"] == lines.index("\u2028") == 343  # was '' before
    assert vocab["##\u2028"] == lines.index("##\u2028") == 13502  # was '##' before


def test_output_vocab_with_bom_crlf_and_spaces(tmp_path):
    path = vocab_file(tmp_path, "\ufeff[PAD]\r\n a \r\n\u3000\r\n中\t\r\n".encode("utf-8"))
    assert load_vocab(path) == {"[PAD]": 0, "a": 1, "\u3000": 2, "中": 3}


def test_output_save_and_load_round_trip(tmp_path):
    token_dict = {"[PAD]": 0, "\u2028": 1, "##\u3000": 2, "中": 3, "a b": 4}
    save_vocab(tmp_path / "v.txt", token_dict)
    assert load_vocab(tmp_path / "v.txt") == token_dict


def test_output_sequence_padding_odd_but_legal():
    # whole-float length, tuples, a NaN in float data, -inf as the padding value
    assert sequence_padding([(1, 2), (3,)], length=2.0).tolist() == [[1, 2], [3, 0]]
    out = sequence_padding([[1.0, np.nan], [2.0]], value=-np.inf)
    assert np.isnan(out[0, 1]) and out[1, 1] == -np.inf and out[0, 0] == 1 and out[1, 0] == 2
    narrowed = sequence_padding([[1.0, 2.0], [3.0]], dtype="int8", value=-1)
    assert narrowed.dtype == np.int8 and narrowed.tolist() == [[1, 2], [3, -1]]
    flags = sequence_padding([[True], [False, True]], value=False)
    assert flags.dtype == bool and flags.tolist() == [[True, False], [False, True]]


def test_output_truncate_sequences_odd_but_legal():
    first, second = [1, 2, 3], [4, 5]
    # pops from the longest, the first on ties: [1, 2, 3] -> [1, 2] -> [1]
    assert truncate_sequences(3.0, np.int64(-1), first, None, second) == [[1], None, [4, 5]]


def test_output_text_segmentate_without_separators():
    assert text_segmentate(" abcdef ", 2, seps=None) == ["abcdef"]
    assert text_segmentate("ab。cd。ef", 3, seps=["。"]) == ["ab。", "cd。", "ef"]


def test_output_viterbi_avoids_forbidden_transitions():
    rng = np.random.default_rng(0)
    trans = rng.normal(size=(3, 3))
    trans[0, 1] = trans[2, 2] = -np.inf  # forbidden
    nodes = rng.normal(size=(4, 3))
    nodes[1, 1] = -np.inf  # label 1 impossible at step 1
    best, best_score = None, -np.inf
    for path in np.ndindex(3, 3, 3, 3):  # brute force over all 81 paths
        score = nodes[np.arange(4), path].sum() + sum(trans[a, b] for a, b in zip(path, path[1:]))
        if path[0] in (0, 2) and score > best_score:
            best, best_score = path, score
    decoded = ViterbiDecoder(trans, starts=np.array([0, 2])).decode(nodes)
    assert tuple(decoded) == best


def test_output_data_generator_whole_float_batch_size():
    generator = DataGenerator(iter(range(5)), batch_size=2.0)
    assert generator.batch_size == 2 and generator.steps is None
    assert list(generator.sample()) == [(False, 0), (False, 1), (False, 2), (False, 3), (True, 4)]


class CharTokenizer(TokenizerBase):
    """A user's tokenizer with only the documented hooks: one token per char."""

    def __init__(self):
        super().__init__(token_start=None, token_end=None)
        self.chars = "abc"

    def _tokenize(self, text):
        return list(text)

    def token_to_id(self, token):
        return self.chars.index(token)

    def id_to_token(self, i):
        if not 0 <= i < len(self.chars):
            raise IndexError(i)
        return self.chars[i]

    def decode(self, ids):
        return "".join(self.ids_to_tokens(ids))


def test_output_minimal_tokenizer_subclass():
    tokenizer = CharTokenizer()
    assert tokenizer.encode("cab") == ([2, 0, 1], [0, 0, 0])
    assert tokenizer.decode(np.array([2, 0, 1])) == "cab"


def test_error_minimal_tokenizer_subclass_unknown_id():
    with pytest.raises(ValueError, match=r"CharTokenizer.ids_to_tokens: `ids` holds 1 id\(s\) "
                       r"outside the vocab: 7 \(at 1\)"):  # fmt: skip
        CharTokenizer().ids_to_tokens([0, 7])
