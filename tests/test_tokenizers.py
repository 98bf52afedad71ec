"""Tests for nlp4keras.tokenizers.

Parity with Hugging Face's fast BertWordPiece tokenizer of all-MiniLM-L6-v2
(uncased English vocab) on real multilingual text found on this machine, plus
direct expectations on a tiny vocab for encode/truncation, decode, vocab files
and errors.
"""

import importlib
import inspect
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp4keras.tokenizers import Tokenizer, load_vocab, save_vocab

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# -- corpus: gettext catalogs, Python docstrings, hand-written edge cases ---

# Standard system location of gettext catalogs; the corpus is smaller without it.
LOCALE_DIR = Path("/usr/share/locale")
LANGUAGES = ("zh_CN", "zh_TW", "ja", "ko", "de", "fr", "es", "ru", "el", "vi", "pl", "tr", "ar")
LINES_PER_LANGUAGE = 250
DOCSTRING_MODULES = (
    "json",
    "textwrap",
    "collections",
    "argparse",
    "pathlib",
    "re",
    "string",
    "functools",
    "itertools",
    "subprocess",
    "zipfile",
    "email.message",
    "http.client",
)
EDGE_CASES = [
    "",
    "   ",
    "\t\n\r",
    "A man is eating food.",
    "Café naïve résumé façade",
    "ÀÉÎÕÜ ÅÇÑ ØÆŒ",
    "İstanbul straße ǅemal",
    "ΟΔΟΣ ΣΟΦΟΣ Σ",
    "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ１２３，。！？",
    "ａｂｃ 全角字母 ＡＢＣ",
    "ﾊﾝｶｸ ｶﾀｶﾅ and ﬁ ligature ½ Ⅻ",
    "😀 emoji 👍🏽 test 🇫🇷 ok",
    "a\x00b\x07c\u200bd\ufeffe\ufffdf",
    "\ue000private\U000f0000use",
    "line\u2028sep\u2029para\x85next\x0bvt\x0cff",
    "no\u00a0break\u3000ideographic",
    "中文English混合text测试123",
    "我爱北京天安门。",
    "日本語のテキストです",
    "한국어 텍스트입니다",
    "𠀀𪚥 rare ideographs 㐀",
    "x" * 101,
    "y" * 100,
    "z" * 250,
    "supercalifragilisticexpialidocious",
    "tab\there  and   spaces",
    "e-mail: someone@example.com, http://example.com/path?q=1&r=2",
    "$3.14, 50% off... (maybe) [sic] {ok}",
    "don't can't won't it's y'all",
    "‘single’ “double” — dash – en… «guillemets» ¿qué? ¡sí!",
    "C++ / C# / F# vs. Objective-C",
    "#hashtag @mention ~tilde ^caret `tick`",
    "1,000,000.50 + 2^10 = 1024; 3/4 <= 0.75",
    "Ελληνικά Русский العربية עברית हिन्दी",
    "Tiếng Việt có dấu: Hà Nội, Đà Nẵng",
    "Zalgo: Z̷̢a̸l̵g̶o̴",
    "[cls] lowercase brackets [mask]",
]
CHINESE_SENTENCES = [
    "今天天气很好，我们去公园散步吧！",
    "机器学习（Machine Learning）是人工智能的一个分支。",
    "请输入您的用户名和密码：",
    "文件“example.txt”不存在，请检查路径。",
    "版本 3.11 已发布，新增 50% 性能提升。",
    "他说：“这是BERT模型的分词器。”",
    "错误：无法连接到服务器（代码 404）……",
    "《红楼梦》是中国古典四大名著之一。",
]


def _mo_strings(path):
    """All msgid/msgstr strings of a compiled gettext catalog (UTF-8 ones only)."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xde\x12\x04\x95" else ">"
    count, originals_at, translations_at = struct.unpack(order + "3I", data[8:20])
    strings = []
    for table_at in (originals_at, translations_at):
        for i in range(count):
            length, offset = struct.unpack_from(order + "2I", data, table_at + 8 * i)
            try:
                strings.append(data[offset : offset + length].decode("utf-8"))
            except UnicodeDecodeError:
                continue  # catalogs in legacy encodings: skip, not mojibake
    return strings


def _lines(strings):
    """Non-blank lines; \\x00 joins plural forms and \\x04 a context."""
    lines = set()
    for text in strings:
        lines.update(
            line
            for line in text.replace("\x00", "\n").replace("\x04", "\n").splitlines()
            if line.strip()
        )
    return sorted(lines)


def _spread(items, count):
    """`count` items evenly spaced over `items` (all of them if fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def _catalog_lines():
    lines = []
    for language in LANGUAGES:
        strings = []
        for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.mo")):
            strings += _mo_strings(path)
        lines += _spread(_lines(strings), LINES_PER_LANGUAGE)
    return lines


def _docstring_lines():
    docs = []
    for name in DOCSTRING_MODULES:
        module = importlib.import_module(name)
        docs.append(module.__doc__ or "")
        docs += [inspect.getdoc(value) or "" for _, value in sorted(vars(module).items())]
    return _spread(_lines(docs), 1500)


def _has_special_token(line):
    # HF's fast tokenizer keeps "[CLS]" etc. whole; bert4keras splits them.
    return any(token in line for token in SPECIAL_TOKENS)


@pytest.fixture(scope="module")
def corpus():
    lines = EDGE_CASES + CHINESE_SENTENCES + _catalog_lines() + _docstring_lines()
    return [line for line in lines if not _has_special_token(line)]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return Tokenizer(str(minilm_dir / "vocab.txt"), do_lower_case=True)


def _hf_tokenizer(minilm_dir, lowercase=True):
    import tokenizers as hf_tokenizers

    hf = hf_tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    if not lowercase:
        hf.normalizer = hf_tokenizers.normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
        )
    return hf


# -- parity with Hugging Face -------------------------------------------------


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_ids_match_hf_bert_wordpiece(corpus, lowercase, minilm_dir):
    hf = _hf_tokenizer(minilm_dir, lowercase)
    # HF's WordPiece turns words over 100 chars into [UNK]; bert4keras: 200.
    ours = Tokenizer(str(minilm_dir / "vocab.txt"), do_lower_case=lowercase, word_maxlen=100)
    assert len(corpus) > 1000
    expected = [encoding.ids for encoding in hf.encode_batch(corpus)]
    actual = [ours.encode(line)[0] for line in corpus]
    mismatches = [
        (line, got, ids) for line, got, ids in zip(corpus, actual, expected) if got != ids
    ]
    assert not mismatches, (
        f"{len(mismatches)} of {len(corpus)} lines differ, first: {mismatches[:3]}"
    )


def test_known_ids_and_special_token_ids(minilm):
    expected = [101, 1037, 2158, 2003, 5983, 2833, 1012, 102]
    assert minilm.encode("A man is eating food.")[0] == expected
    assert (minilm._token_pad_id, minilm._token_unk_id, minilm._token_mask_id) == (0, 100, 103)
    assert (minilm._token_start_id, minilm._token_end_id) == (101, 102)
    assert minilm._vocab_size == 30522 and minilm._do_lower_case is True


def test_tokenize_examples(minilm):
    assert minilm.tokenize("") == ["[CLS]", "[SEP]"]
    assert minilm.tokenize("Unaffable Café") == ["[CLS]", "una", "##ffa", "##ble", "cafe", "[SEP]"]
    assert minilm.tokenize("中文English")[1:-1] == ["中", "文", "english"]
    assert minilm.tokenize("x" * 201)[1:-1] == ["[UNK]"]  # longer than word_maxlen
    assert minilm.tokenize("x" * 150)[1:-1] != ["[UNK]"]
    assert minilm.tokenize("a b c d e", maxlen=4) == ["[CLS]", "a", "b", "[SEP]"]
    # As in bert4keras, special tokens typed in the text are not kept whole.
    assert minilm.tokenize("[MASK]")[1:-1] == ["[", "mask", "]"]


def test_decode(minilm):
    def round_trip(text):
        return minilm.decode(minilm.encode(text)[0])

    assert (
        round_trip("Hello, world! It's 3.14 dollars (roughly).")
        == "hello, world! it's 3.14 dollars (roughly)."
    )
    assert round_trip("Unaffable people") == "unaffable people"
    assert round_trip("中国人民大学。") == "中国人民大学。"
    assert round_trip("中文English中文，Test") == "中文english中文，test"
    assert minilm.decode(None, tokens=["[CLS]", "play", "##ing", "[PAD]", "[SEP]"]) == "playing"


def test_vocab_round_trip(tmp_path, minilm_dir):
    vocab = load_vocab(minilm_dir / "vocab.txt")
    assert len(vocab) == 30522 and vocab["[CLS]"] == 101 and vocab["##s"] == 2015
    save_vocab(tmp_path / "vocab.txt", vocab)
    assert load_vocab(tmp_path / "vocab.txt") == vocab
    assert (tmp_path / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()


def test_simplified_vocab_gives_the_same_tokens(corpus, minilm, minilm_dir):
    vocab, keep_tokens = load_vocab(
        minilm_dir / "vocab.txt", simplified=True, startswith=list(SPECIAL_TOKENS)
    )
    assert len(vocab) == len(keep_tokens) < minilm._vocab_size
    assert keep_tokens[:5] == [0, 100, 101, 102, 103]
    simplified = Tokenizer(vocab, do_lower_case=True)
    for line in corpus[:500]:
        assert simplified.tokenize(line) == minilm.tokenize(line)


# -- tiny vocab: encode, truncation, vocab files ------------------------------

TINY_TOKENS = list(SPECIAL_TOKENS) + [
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "##b",
    "中",
    "中国",
    "##国",
    "a.",
    "!",
    "[unused1]",
    "hello",
]


@pytest.fixture
def tiny():
    return Tokenizer({token: i for i, token in enumerate(TINY_TOKENS)})


def _ids(*tokens):
    return [TINY_TOKENS.index(token) for token in tokens]


def test_encode_pair_patterns(tiny):
    ids, segments = tiny.encode("a b", "c")
    assert ids == _ids("[CLS]", "a", "b", "[SEP]", "c", "[SEP]") and segments == [0] * 4 + [1] * 2
    ids, segments = tiny.encode("a b", "c", pattern="S*ES*E")
    assert ids == _ids("[CLS]", "a", "b", "[SEP]", "[CLS]", "c", "[SEP]")
    assert segments == [0] * 4 + [1] * 3


@pytest.mark.parametrize(
    "truncate_from, kept",
    [
        ("right", ("a", "b")),
        ("left", ("d", "e")),
        (1, ("d", "e")),
        (2, ("a", "e")),
        (-2, ("a", "b")),
    ],
)
def test_encode_truncates_the_longer_text(tiny, truncate_from, kept):
    ids, segments = tiny.encode("a b c d e", "f g h", maxlen=8, truncate_from=truncate_from)
    assert ids == _ids("[CLS]", *kept, "[SEP]", "f", "g", "h", "[SEP]")
    assert segments == [0] * 4 + [1] * 4
    ids, _ = tiny.encode(
        "a b c d e", "f g h", maxlen=9, pattern="S*ES*E", truncate_from=truncate_from
    )
    assert ids == _ids("[CLS]", *kept, "[SEP]", "[CLS]", "f", "g", "h", "[SEP]")


def test_unknown_words_pieces_and_translate(tiny):
    assert tiny.tokenize("abb 中国 zzz")[1:-1] == ["a", "##b", "##b", "中", "[UNK]", "[UNK]"]
    split = Tokenizer(tiny._token_dict, pre_tokenize=lambda text: text.split("|"))
    assert split.tokenize("中国|a!")[1:-1] == ["中国", "a", "!"]
    translated = Tokenizer(tiny._token_dict, token_translate={"b": "c"})
    assert translated.tokenize("a b")[1:-1] == ["a", "c"]


def test_simplified_tiny_vocab(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(TINY_TOKENS) + "\n", encoding="utf-8")
    vocab, keep_tokens = load_vocab(
        tmp_path / "vocab.txt", simplified=True, startswith=["[CLS]", "[SEP]"]
    )
    # Dropped: [PAD], [UNK], [MASK] and [unused1] (brackets), 中国, ##国, a.
    assert list(vocab) == [
        "[CLS]",
        "[SEP]",
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        "g",
        "h",
        "##b",
        "中",
        "!",
        "hello",
    ]
    assert keep_tokens == [TINY_TOKENS.index(token) for token in vocab]


@settings(max_examples=200, deadline=None)
@given(
    first=st.text(max_size=60),
    second=st.none() | st.text(max_size=60),
    maxlen=st.integers(4, 30),
    pattern=st.sampled_from(["S*E*E", "S*ES*E"]),
    truncate_from=st.sampled_from(["right", "left", 0, 1, 3, -1, -3]),
)
def test_encode_respects_maxlen(first, second, maxlen, pattern, truncate_from):
    tokenizer = Tokenizer({token: i for i, token in enumerate(TINY_TOKENS)}, do_lower_case=True)
    ids, segments = tokenizer.encode(
        first, second, maxlen=maxlen, pattern=pattern, truncate_from=truncate_from
    )
    assert len(ids) == len(segments) <= maxlen
    assert ids[0] == tokenizer._token_start_id and ids[-1] == tokenizer._token_end_id
    untruncated, _ = tokenizer.encode(first, second, pattern=pattern)
    assert len(ids) == min(len(untruncated), maxlen)


# -- errors ---------------------------------------------------------------------


def test_missing_vocab_file(tmp_path):
    missing = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nope"):
        load_vocab(missing)
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        Tokenizer(str(missing))


def test_empty_vocab(tmp_path):
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_vocab(tmp_path / "vocab.txt")
    with pytest.raises(ValueError, match="empty"):
        Tokenizer({})


@pytest.mark.parametrize("missing", [("[CLS]",), ("[SEP]",), ("[CLS]", "[SEP]")])
def test_vocab_without_start_or_end_token(missing):
    # bert4keras kept [CLS]/[SEP] around the text and encoded a missing one
    # as [UNK]: written out by hand below for the vocab without them.
    kept = [t for t in TINY_TOKENS if t not in missing]
    vocab = {token: i for i, token in enumerate(kept)}
    tokenizer = Tokenizer(vocab)

    def ids(*tokens):
        return [kept.index(t if t in kept else "[UNK]") for t in tokens]

    assert tokenizer._token_start_id == (None if "[CLS]" in missing else kept.index("[CLS]"))
    assert tokenizer._token_end_id == (None if "[SEP]" in missing else kept.index("[SEP]"))
    assert tokenizer.tokenize("a b") == ["[CLS]", "a", "b", "[SEP]"]
    assert tokenizer.encode("a b c") == (ids("[CLS]", "a", "b", "c", "[SEP]"), [0] * 5)
    assert tokenizer.encode("a b c", maxlen=4)[0] == ids("[CLS]", "a", "b", "[SEP]")
    pair = ids("[CLS]", "a", "[SEP]", "b", "[SEP]"), [0, 0, 0, 1, 1]
    assert tokenizer.encode("a", "b") == pair
    assert tokenizer.encode(tokenizer.tokenize("a"), tokenizer.tokenize("b")) == pair
    token_ids, segment_ids = tokenizer.encode_batch(["a b", "c"])
    assert token_ids.tolist() == [ids("[CLS]", "a", "b", "[SEP]"), ids("[CLS]", "c", "[SEP]") + [0]]
    assert tokenizer.decode(tokenizer.encode("a b")[0]) == "a b"
    assert tokenizer.rematch("a b", tokenizer.tokenize("a b")) == [[], [0], [2], []]
    assert Tokenizer(vocab, token_start=None, token_end=None).encode("a")[0] == ids("a")


def test_vocab_without_start_end_and_unk_tokens():
    # bert4keras' chess example: a vocab of [PAD] and characters, then
    # `tokenizer._token_unk_id = 0`, and token_ids[1:-1] drops [CLS]/[SEP].
    chars = ["[PAD]"] + list("0123456789abcdefghi")
    tokenizer = Tokenizer(dict(zip(chars, range(len(chars)))))
    assert tokenizer.tokenize("h 2") == ["[CLS]", "h", "2", "[SEP]"]
    with pytest.raises(ValueError, match=r"`token_start` '\[CLS\]' is not in the vocab.*\[UNK\]"):
        tokenizer.encode("h 2")
    tokenizer._token_unk_id = 0
    # [CLS] h 2 e 2 h 0 [SEP] popped at -2 down to 5 tokens; 'h' is 18, '2' 3, 'e' 15
    assert tokenizer.encode("h 2 e 2 h 0", maxlen=5) == ([0, 18, 3, 15, 0], [0] * 5)
    assert tokenizer.encode("zz")[0] == [0, 0, 0]  # an unknown word is [UNK] too


def test_vocab_without_unk_token():
    vocab = {token: i for i, token in enumerate(t for t in TINY_TOKENS if t != "[UNK]")}
    tokenizer = Tokenizer(vocab)
    assert tokenizer._token_unk_id is None and tokenizer.tokenize("a b")[1:-1] == ["a", "b"]
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        tokenizer.tokenize("zzz")
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        tokenizer.token_to_id("zzz")


@pytest.mark.parametrize(
    "call, type_name",
    [
        (lambda t: t.tokenize(123), "int"),
        (lambda t: t.tokenize(b"abc"), "bytes"),
        (lambda t: t.encode(None), "NoneType"),
        (lambda t: t.encode("a", ["b", 3]), "int"),
    ],
)
def test_non_str_input(tiny, call, type_name):
    with pytest.raises(TypeError, match=type_name):
        call(tiny)


def test_bad_arguments(tiny, tmp_path):
    with pytest.raises(ValueError, match="maxlen"):
        tiny.encode("a", "b", maxlen=2)
    with pytest.raises(ValueError, match="pattern"):
        tiny.encode("a", pattern="SE")
    with pytest.raises(ValueError, match="truncate_from"):
        tiny.encode("a", maxlen=5, truncate_from="middle")
    save_vocab(tmp_path / "vocab.txt", tiny._token_dict)
    with pytest.raises(ValueError, match=r"startswith.*\[NOPE\]"):
        load_vocab(tmp_path / "vocab.txt", simplified=True, startswith=["[NOPE]"])


# -- batches, rematch, bert4keras helpers -------------------------------------


def test_encode_batch_equals_encode_row_by_row(tiny):
    firsts, seconds = ["a b c d e", "a", "中国 hello !", ""], ["f", "g h", "b", "a b"]
    for pattern in ("S*E*E", "S*ES*E"):
        token_ids, segment_ids = tiny.encode_batch(firsts, seconds, maxlen=7, pattern=pattern)
        assert token_ids.dtype == segment_ids.dtype == "int32"
        for row, (first, second) in enumerate(zip(firsts, seconds)):
            ids, segments = tiny.encode(first, second, maxlen=7, pattern=pattern)
            pad = token_ids.shape[1] - len(ids)
            assert token_ids[row].tolist() == ids + [tiny._token_pad_id] * pad
            assert segment_ids[row].tolist() == segments + [0] * pad
    token_ids, _ = tiny.encode_batch(["a", "a b"], length=6)
    assert token_ids.shape == (2, 6)
    assert tiny(["a", "a b"])[0].tolist() == tiny.encode_batch(["a", "a b"])[0].tolist()
    assert tiny("a b", "c") == tiny.encode("a b", "c")
    assert tiny.encode_batch([])[0].shape == (0, 0)


def test_encode_batch_offsets(minilm):
    texts = ["Hello, WORLD!", "Café 中文 xqzjwv", "  "]
    token_ids, _, offsets = minilm.encode_batch(texts, return_offsets=True)
    assert offsets.shape == token_ids.shape + (2,)
    for row, text in enumerate(texts):
        tokens = minilm.ids_to_tokens(token_ids[row])
        for token, (start, end) in zip(tokens, offsets[row]):
            if token in ("[CLS]", "[SEP]", "[PAD]"):
                assert (start, end) == (0, 0)
            elif token != "[UNK]":
                assert minilm._normalize(text[start:end]).strip() == minilm.stem(token)
    tokens = minilm.ids_to_tokens(token_ids[1])
    assert tokens[1:4] == ["cafe", "中", "文"]
    assert [tuple(span) for span in offsets[1, 1:4]] == [(0, 4), (5, 6), (6, 7)]


def test_rematch_examples(minilm):
    text = "Héllo, 世界! \x00xyzzyplugh"
    tokens = minilm.tokenize(text)
    assert tokens[1:6] == ["hello", ",", "世", "[UNK]", "!"]  # 界 is not in the vocab
    assert tokens[6:-1] == ["x", "##y", "##zzy", "##pl", "##ugh"]
    mapping = minilm.rematch(text, tokens)
    assert mapping[0] == mapping[-1] == []
    assert mapping[1:6] == [[0, 1, 2, 3, 4], [5], [7], [8], [9]]
    assert mapping[6:-1] == [[12], [13], [14, 15, 16], [17, 18], [19, 20, 21]]  # \x00 dropped
    # [UNK] covers the word it replaced; later tokens are still found.
    tokens = minilm.tokenize("a 𐍈𐍉 b")
    assert tokens[1:-1] == ["a", "[UNK]", "b"]
    assert minilm.rematch("a 𐍈𐍉 b", tokens)[1:-1] == [[0], [2, 3], [5]]


def test_bert4keras_static_helpers(minilm):
    assert Tokenizer.stem("##ing") == "ing" and minilm.stem("play") == "play"
    assert Tokenizer._is_space("\u3000") and not Tokenizer._is_space("a")
    assert Tokenizer._is_punctuation("，") and Tokenizer._is_punctuation("$")
    assert Tokenizer._is_cjk_character("中") and not Tokenizer._is_cjk_character("あ")
    assert Tokenizer._is_control("\x07") and not Tokenizer._is_control("\n")
    assert Tokenizer._is_special("[CLS]") and not Tokenizer._is_special("[")
    assert Tokenizer._is_redundant("中国") and not Tokenizer._is_redundant("中")
    assert "。" in Tokenizer._cjk_punctuation() and "a" not in Tokenizer._cjk_punctuation()


def test_encode_takes_token_lists_as_bert4keras(tiny):
    tokens = tiny.tokenize("a b c d e")
    assert tiny.encode(tokens) == tiny.encode("a b c d e")
    assert tiny.encode(tokens, ["f", "g"], maxlen=7) == tiny.encode("a b c d e", "f g", maxlen=7)
    assert tiny.encode(["a", "zzz"])[0] == _ids("[CLS]", "a", "[UNK]", "[SEP]")


def test_bad_batch_arguments(tiny):
    with pytest.raises(TypeError, match="list of str"):
        tiny.encode_batch("a b")
    with pytest.raises(TypeError, match=r"`first_texts\[1\]` must be a str, got 1 \(int\)"):
        tiny.encode_batch(["a", 1])
    with pytest.raises(ValueError, match="2 first_texts but 1 second_texts"):
        tiny.encode_batch(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="more than length=3"):
        tiny.encode_batch(["a b c"], length=3)
