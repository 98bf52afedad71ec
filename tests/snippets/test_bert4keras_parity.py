"""bert4keras snippets that example scripts import: `open` (with
`indexable`), `uniout`, `string_matching`, `longest_common_substring` /
`_subsequence`, `softmax`, `is_one_of`, `convert_to_unicode` / `_str`,
`insert_arguments` / `delete_arguments`, `orthogonally_resize`,
`WebServing` and `DataGenerator.to_dataset`.

Each is checked against its bert4keras meaning with expectations worked out
by hand or by an independent computation (the built-in `open`, difflib,
brute force, a direct index formula), plus the errors for bad arguments."""

import builtins
import difflib
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest

from nlp4keras.snippets import (
    DataGenerator,
    WebServing,
    convert_to_str,
    convert_to_unicode,
    delete_arguments,
    insert_arguments,
    is_one_of,
    longest_common_subsequence,
    longest_common_substring,
    orthogonally_resize,
    softmax,
    string_matching,
    to_array,
)
from nlp4keras.snippets import open as b4k_open
from nlp4keras.snippets.files import _byte_offsets, _text_offsets

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"

# Lines with every kind of line break text mode knows, CJK text, an empty
# line and a last line without a break.
TEXT = "第一行 first\r\nsecond\n\n第四 line\rfifth\nlast, no break"


def builtin_lines(path, **kwargs):
    with builtins.open(path, **kwargs) as file:
        return file.readlines()


# -- open ------------------------------------------------------------------


def test_open_text_defaults_to_utf8(tmp_path):
    path = tmp_path / "a.txt"
    with b4k_open(path, "w") as f:
        assert f.file.encoding == "utf-8"  # not the locale's encoding
        f.write("中文\n")
        f.write("字节\n".encode("utf-8"))  # bytes are decoded, as bert4keras did
    assert path.read_bytes() == "中文\n字节\n".encode("utf-8")
    assert f.closed
    with b4k_open(path) as f:
        assert f.file.encoding == "utf-8"
        assert f.readline() == "中文\n" and f.tell() == len("中文\n".encode("utf-8"))
        assert f.read() == "字节\n"
        f.seek(0)
        assert f.readlines() == ["中文\n", "字节\n"]
        f.seek(0)
        assert list(f) == ["中文\n", "字节\n"]
        f.seek(0)
        assert next(f) == "中文\n" and f.next() == "字节\n"


def test_open_other_encoding_and_binary(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("汉字\n".encode("gbk"))
    with b4k_open(path, encoding="gbk") as f:
        assert f.read() == "汉字\n"
    with b4k_open(path, "rb") as f:
        assert f.read() == "汉字\n".encode("gbk")
    with b4k_open(path, "a", encoding="gbk") as f:
        f.write("再")
        f.flush()
    assert path.read_bytes() == "汉字\n再".encode("gbk")


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "utf-16", "utf-8-sig"])
def test_open_indexable_lines_match_builtin(tmp_path, encoding):
    path = tmp_path / "lines.txt"
    path.write_bytes(TEXT.encode(encoding))
    expected = builtin_lines(path, encoding=encoding)
    assert len(expected) == 6 and expected[0] == "第一行 first\n"  # a sanity check
    with b4k_open(path, encoding=encoding, indexable=True) as f:
        assert len(f) == len(expected)
        assert [f[i] for i in range(len(f))] == expected
        assert [f[i] for i in reversed(range(len(f)))] == expected[::-1]  # random access
        assert f[-1] == "last, no break" and f[-len(f)] == expected[0]
        f[2]  # reading a line leaves the file at the next one, as in bert4keras
        assert f.readline() == expected[3]


def test_open_indexable_binary_and_crlf_fast_path(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"a\r\nbb\n\nccc")
    with b4k_open(path, "rb", indexable=True) as f:
        assert [f[i] for i in range(len(f))] == [b"a\r\n", b"bb\n", b"\n", b"ccc"]
    with b4k_open(path, indexable=True) as f:
        assert [f[i] for i in range(len(f))] == ["a\n", "bb\n", "\n", "ccc"]
    # The byte scan and the text-mode scan agree where the byte scan applies,
    # and the byte scan declines a lone '\r' (a line break in text mode).
    for encoding in ("utf-8", "gbk"):
        path.write_bytes("甲\r\n乙\n\n丙".encode(encoding))
        with builtins.open(path, encoding=encoding) as text:
            assert _byte_offsets(path, check_breaks=True) == _text_offsets(text)
    path.write_bytes(b"a\rb\n")
    assert _byte_offsets(path, check_breaks=True) is None
    assert _byte_offsets(path, check_breaks=False) == [0]


def test_open_empty_file_is_indexable(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with b4k_open(path, indexable=True) as f:
        assert len(f) == 0
        with pytest.raises(IndexError, match="line 0 is out of range: .*empty.txt' has 0 lines"):
            f[0]


def test_open_index_file_is_written_then_read(tmp_path):
    path, index = tmp_path / "lines.txt", tmp_path / "lines.index.json"
    path.write_text("one\ntwo\nthree\n", encoding="utf-8")
    with b4k_open(path, indexable=str(index)) as f:
        assert [f[i] for i in range(3)] == ["one\n", "two\n", "three\n"]
    assert json.loads(index.read_text()) == [0, 4, 8]  # bert4keras' format
    index.write_text("[8, 0]")  # an existing index file is used as it is
    with b4k_open(path, indexable=index) as f:
        assert len(f) == 2 and f[0] == "three\n" and f[1] == "one\n"
    index.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match=r"index file .*lines.index.json.* delete it"):
        b4k_open(path, indexable=index)


def test_open_errors(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("x\ny\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        b4k_open(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        b4k_open(tmp_path / "missing.txt", indexable=True)
    with pytest.raises(ValueError, match=r"`indexable` needs a read mode.*data.txt.*mode 'w'"):
        b4k_open(path, "w", indexable=True)
    assert path.read_text(encoding="utf-8") == "x\ny\n"  # refused before opening
    with pytest.raises(ValueError, match=r"`indexable` needs a read mode.*mode 'a'"):
        b4k_open(path, "a", indexable=str(tmp_path / "index.json"))
    with pytest.raises(TypeError, match=r"open: `indexable` must be True, False or the path"):
        b4k_open(path, indexable=1)
    with pytest.raises(ValueError, match=r"open: `encoding` 'gbk' was given for .*binary"):
        b4k_open(path, "rb", encoding="gbk")
    with pytest.raises(ValueError, match=r"open: `errors` 'ignore' was given for .*binary"):
        b4k_open(path, "rb", errors="ignore")
    with pytest.raises(ValueError, match=r"open: `encoding` 'nope' is not a known text encoding"):
        b4k_open(path, encoding="nope")
    with pytest.raises(ValueError, match=r"open: `errors` 'nope' is not an error handler"):
        b4k_open(path, errors="nope")
    with pytest.raises(ValueError, match=r"open: cannot open .*data.txt.*invalid mode"):
        b4k_open(path, "q")
    with pytest.raises(TypeError, match=r"open: `name` must be a file path, got 3"):
        b4k_open(3)
    with b4k_open(path, indexable=True) as f:
        with pytest.raises(IndexError, match=r"line 2 is out of range: .*data.txt' has 2 lines"):
            f[2]
        with pytest.raises(IndexError, match=r"line -3 is out of range"):
            f[-3]
        with pytest.raises(TypeError, match=r"`key` must be an int, got '0'"):
            f["0"]
    with b4k_open(path) as f:
        with pytest.raises(TypeError, match=r"f\[i\] needs the line index: open .*indexable=True"):
            f[0]
        with pytest.raises(TypeError, match=r"len\(f\) needs the line index"):
            len(f)


def test_open_closes_the_file_when_the_index_fails(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_bytes("a\n".encode("utf-16-le") + b"\x00\xd8\n\x00")  # a lone surrogate
    opened = []
    real_open = builtins.open

    def recording_open(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(builtins, "open", recording_open)
    with pytest.raises(UnicodeDecodeError):
        b4k_open(path, encoding="utf-16-le", indexable=True)
    assert opened and all(file.closed for file in opened)


# -- uniout ----------------------------------------------------------------


def test_uniout_is_an_importable_no_op():
    from nlp4keras.snippets import uniout

    assert uniout.__name__ == "nlp4keras.snippets.uniout"
    assert "Python 3" in uniout.__doc__
    assert [name for name in vars(uniout) if not name.startswith("__")] == []


# -- string_matching -------------------------------------------------------


def test_string_matching():
    assert string_matching("layer_norm/gamma", ["beta", "gamma", "bias"])
    assert not string_matching("dense/kernel", ["beta", "gamma", "bias"])
    assert string_matching("abc", ["a.c"])  # keywords are regular expressions
    assert not string_matching("ab", ["^b"])
    assert not string_matching("anything", [])
    assert string_matching("x", ("y", "x"))  # any iterable of patterns


def test_string_matching_errors():
    with pytest.raises(TypeError, match=r"string_matching: `keywords` must be a list of str"):
        string_matching("abc", "ab")
    with pytest.raises(TypeError, match=r"string_matching: `keywords\[1\]` must be a str pattern"):
        string_matching("abc", ["x", 3])
    with pytest.raises(ValueError, match=r"`keywords\[0\]` '\(' is not a valid regular expr"):
        string_matching("abc", ["("])
    with pytest.raises(TypeError, match=r"string_matching: `s` must be a str, got b'abc'"):
        string_matching(b"abc", ["a"])


# -- longest_common_substring ----------------------------------------------


def test_longest_common_substring_by_hand():
    # 'bcd' is shared twice in the source; the first occurrence (ending first) wins
    assert longest_common_substring("abcdxbcd", "bcdyab") == (3, (1, 4, 0, 3))
    assert longest_common_substring("abc", "xyz") == (0, (0, 0, 0, 0))
    assert longest_common_substring("", "abc") == (0, (0, 0, 0, 0))
    assert longest_common_substring([1, 2, 3], (0, 2, 3, 4)) == (2, (1, 3, 1, 3))


def test_longest_common_substring_matches_difflib():
    # difflib's longest match starts earliest in `a`, then in `b`: for
    # matches of one length, that is bert4keras' "ends first" choice.
    rng = np.random.default_rng(0)
    for _ in range(300):
        source = "".join(rng.choice(list("abc"), size=rng.integers(0, 12)))
        target = "".join(rng.choice(list("abc"), size=rng.integers(0, 12)))
        length, (i, i_end, j, j_end) = longest_common_substring(source, target)
        match = difflib.SequenceMatcher(None, source, target, autojunk=False).find_longest_match()
        assert length == match.size
        if length:
            assert (i, j) == (match.a, match.b)
            assert (i_end - i, j_end - j) == (length, length)
            assert source[i:i_end] == target[j:j_end]


def test_longest_common_substring_errors():
    with pytest.raises(TypeError, match=r"longest_common_substring: `source` must be a sequence"):
        longest_common_substring(5, "a")
    with pytest.raises(TypeError, match=r"`target` must be a sequence"):
        longest_common_substring("a", iter("a"))


# -- longest_common_subsequence --------------------------------------------


def brute_force_lcs_length(source, target):
    """Longest subsequence of `source` (all index subsets) found in `target`."""

    def is_subsequence(items, sequence):
        rest = iter(sequence)
        return all(any(item == other for other in rest) for item in items)

    for size in range(len(source), -1, -1):
        for indices in itertools.combinations(range(len(source)), size):
            if is_subsequence([source[i] for i in indices], target):
                return size
    return 0


def test_longest_common_subsequence_by_hand():
    # Built from the ends as bert4keras does (worked by hand): equal last
    # items are matched; else the last source item is dropped unless
    # dropping the last target item keeps a longer match.
    assert longest_common_subsequence("ab", "ba") == (1, [(0, 1)])
    assert longest_common_subsequence("aab", "ab") == (2, [(1, 0), (2, 1)])
    assert longest_common_subsequence("abc", "cab") == (2, [(0, 1), (1, 2)])
    assert longest_common_subsequence([1, 2, 3, 2], [2, 1, 2]) == (2, [(0, 1), (3, 2)])
    assert longest_common_subsequence("abc", "") == (0, [])
    assert longest_common_subsequence("abcbdab", "bdcaba")[0] == 4  # the textbook example


def test_longest_common_subsequence_against_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        source = list(rng.integers(0, 3, size=rng.integers(0, 8)))
        target = list(rng.integers(0, 3, size=rng.integers(0, 8)))
        length, mapping = longest_common_subsequence(source, target)
        assert length == brute_force_lcs_length(source, target) == len(mapping)
        assert all(source[i] == target[j] for i, j in mapping)
        pairs = list(zip(mapping, mapping[1:]))
        assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in pairs)


def test_longest_common_subsequence_errors():
    with pytest.raises(TypeError, match=r"longest_common_subsequence: `source` must be a sequ"):
        longest_common_subsequence({"a": 1}, "a")


# -- softmax ---------------------------------------------------------------


def test_softmax():
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(softmax([[0, 1, 2]]), [e / e.sum()])
    assert softmax([[0, 1, 2]]).dtype == np.float64  # integers become floats
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])  # no overflow
    expected = [[0.5, 0.75], [0.5, 0.25]]
    np.testing.assert_allclose(softmax([[0.0, np.log(3.0)], [0.0, 0.0]], axis=0), expected)
    x = np.float32([[1, 2], [3, 5]])
    assert softmax(x).dtype == np.float32
    np.testing.assert_allclose(softmax(x, axis=-1).sum(axis=-1), [1, 1], rtol=1e-6)
    np.testing.assert_allclose(softmax([0.0, -np.inf]), [1.0, 0.0])


def test_softmax_errors():
    with pytest.raises(
        ValueError, match=r"softmax: `axis` must be an integer >= -2 and <= 1, got 2"
    ):
        softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match=r"softmax: `axis` must be an integer"):
        softmax(np.zeros(3), axis=0.5)
    with pytest.raises(ValueError, match=r"softmax: `x` must have at least one dimension"):
        softmax(3.0)
    with pytest.raises(TypeError, match=r"softmax: `x` must be an array of numbers"):
        softmax(["a", "b"])


# -- is_one_of, to_array, convert_to_unicode / convert_to_str --------------


def test_is_one_of_compares_identity():
    a, b = np.zeros(3), np.zeros(3)
    with pytest.raises(ValueError):
        _ = a in [b, a]  # what is_one_of avoids: `in` compares arrays element-wise
    assert is_one_of(a, [b, a]) and not is_one_of(a, [b]) and not is_one_of(a, [])
    assert not is_one_of(1000, [float(1000)])
    with pytest.raises(TypeError, match=r"is_one_of: `ys` must be an iterable, got 5"):
        is_one_of(a, 5)


def test_to_array_like_bert4keras():
    token_ids, segment_ids = to_array([[1, 2]], [[0, 0]])
    assert token_ids.shape == segment_ids.shape == (1, 2)
    assert to_array([1.5]).tolist() == [1.5] and to_array() == []


@pytest.mark.parametrize("convert", [convert_to_unicode, convert_to_str])
def test_convert_to_unicode_and_str(convert):
    assert convert("中文".encode("utf-8")) == "中文"
    assert convert(b"a\xffb") == "ab"  # undecodable bytes dropped by default
    assert convert(b"a\xffb", errors="replace") == "a\ufffdb"
    assert convert("汉".encode("gbk"), encoding="gbk") == "汉"
    assert convert("already text") == "already text"
    assert convert(5) == 5  # anything else passes through
    with pytest.raises(UnicodeDecodeError):
        convert(b"\xff", errors="strict")
    with pytest.raises(ValueError, match=rf"{convert.__name__}: `encoding` 'nope' is not"):
        convert(b"a", encoding="nope")
    with pytest.raises(ValueError, match=rf"{convert.__name__}: `errors` 'nope' is not"):
        convert(b"a", errors="nope")


# -- insert_arguments / delete_arguments -----------------------------------


class Base:
    def __init__(self, hidden=1, with_pool=False):
        self.hidden, self.with_pool = hidden, with_pool


class Child(Base):
    @insert_arguments(with_discriminator=False, final_activation="softmax")
    @delete_arguments("with_pool")
    def __init__(self, **kwargs):
        """Child's own docstring."""
        super().__init__(**kwargs)


def test_insert_and_delete_arguments():
    child = Child(hidden=3, with_discriminator=True)
    assert (child.hidden, child.with_pool) == (3, False)
    assert child.with_discriminator is True and child.final_activation == "softmax"
    assert Child().with_discriminator is False
    with pytest.raises(TypeError, match=r"^Child got an unexpected keyword argument 'with_pool'$"):
        Child(with_pool=True)
    assert Child.__init__.__doc__ == "Child's own docstring."  # functools.wraps


def test_insert_and_delete_arguments_errors():
    with pytest.raises(TypeError, match=r"delete_arguments: `arguments\[1\]` must be a string"):
        delete_arguments("a", 3)
    with pytest.raises(TypeError, match=r"insert_arguments: `method` must be a function"):
        insert_arguments(a=1)(5)


# -- orthogonally_resize ---------------------------------------------------


def resized_by_index(a, new_shape, window):
    """Along a growing axis, output index t reads input index
    (t // (window * k)) * window + t % window: blocks of `window` entries
    repeated k times; along others the leading entries. Norm restored."""
    out = a
    for axis, (old, new) in enumerate(zip(a.shape, new_shape)):
        if new > old:
            k = -(-new // old)
            index = [(t // (window * k)) * window + t % window for t in range(new)]
        else:
            index = list(range(new))
        out = np.take(out, index, axis=axis)
    return out * (np.linalg.norm(a) / np.linalg.norm(out))


def test_orthogonally_resize_by_hand():
    # [0, 1, 2, 3] -> blocks [0, 1], [2, 3], each twice -> first 6 entries
    out = orthogonally_resize(np.arange(4.0), (6,))
    direction = np.array([0, 1, 0, 1, 2, 3.0])
    np.testing.assert_allclose(out, direction * np.sqrt(14 / 15))
    np.testing.assert_allclose(np.linalg.norm(out), np.linalg.norm(np.arange(4.0)))


@pytest.mark.parametrize(
    "shape, new_shape, window",
    [((4, 6), (8, 3), 2), ((4, 6), (7, 13), 2), ((6, 4, 2), (12, 2, 5), 1), ((6,), (9,), 3)],
)
def test_orthogonally_resize_matches_index_formula(shape, new_shape, window):
    a = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    out = orthogonally_resize(a, new_shape, window=window)
    assert out.shape == new_shape and out.dtype == np.float32
    np.testing.assert_allclose(out, resized_by_index(a, new_shape, window), rtol=1e-5)


def test_orthogonally_resize_errors():
    with pytest.raises(ValueError, match=r"`new_shape` \(4,\) has 1 dimensions but `a` has 2"):
        orthogonally_resize(np.ones((2, 2)), (4,))
    with pytest.raises(ValueError, match=r"dimension 0 grows from 3 to 4, so its size 3 must be"):
        orthogonally_resize(np.ones(3), (4,))
    with pytest.raises(ValueError, match=r"`window` must be an integer >= 1, got 0"):
        orthogonally_resize(np.ones(4), (8,), window=0)
    assert np.all(orthogonally_resize(np.zeros((2, 2)), (4, 2)) == 0)  # no division by zero


# -- WebServing ------------------------------------------------------------


@pytest.fixture
def web():
    """A WebServing on a free localhost port, serving in a thread."""
    calls = []

    def echo(text, n=1):
        calls.append((text, n))
        if text == "boom":
            raise RuntimeError("exploded")
        return {"text": text * n, "sum": np.int64(n) + 1, "array": np.arange(2)}

    server = WebServing(host="127.0.0.1", port=0, server="paste")
    server.route("/echo", echo, {"text": (None, True), "n": (int, False)})
    server.route("/form", echo, {"text": (None, True)}, method="POST")
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while server.port == 0 and time.monotonic() < deadline:  # bound once the port is known
        time.sleep(0.01)
    assert server.port != 0
    yield server, calls
    server.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def request(server, path, form=None, content_type=None):
    """`(HTTP status, decoded JSON)` of a GET, or a POST of `form`."""
    url = f"http://127.0.0.1:{server.port}{path}"
    data = None if form is None else urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data)
    if content_type:
        req.add_header("Content-Type", content_type)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8"))


def test_web_serving_answers_like_bert4keras(web):
    server, calls = web
    query = urllib.parse.urlencode({"text": "苹果", "n": "2"})
    status, answer = request(server, f"/echo?{query}")
    assert status == 200
    assert answer == {
        "code": 0,
        "desc": "succeeded",
        "data": {"text": "苹果苹果", "sum": 3, "array": [0, 1]},
    }
    assert calls[-1] == ("苹果", 2)  # n converted with int
    assert request(server, "/echo?text=x")[1]["data"]["text"] == "x"  # optional n left out
    assert calls[-1] == ("x", 1)
    status, answer = request(server, "/echo?n=2")
    assert (status, answer) == (200, {"code": 1, "desc": 'lack of "text" argument', "data": {}})
    answer = request(server, "/echo?text=boom")[1]
    assert answer == {"code": 2, "desc": "exploded", "data": {}}
    answer = request(server, "/echo?text=a&n=two")[1]
    assert answer["code"] == 1 and answer["desc"].startswith("bad \"n\" argument 'two'")
    assert request(server, "/form", form={"text": "表单"})[1]["data"]["text"] == "表单"


def test_web_serving_http_errors(web):
    server, _ = web
    assert request(server, "/nowhere")[0] == 404
    assert request(server, "/form?text=a")[0] == 405  # a POST route asked with GET
    status, answer = request(server, "/form", form={"text": "a"}, content_type="text/plain")
    assert status == 415 and "application/x-www-form-urlencoded" in answer["desc"]


def test_web_serving_argument_errors():
    with pytest.raises(
        ValueError, match=r"WebServing: `port` must be an integer >= 0 and <= 65535"
    ):
        WebServing(port=70000)
    with pytest.raises(TypeError, match=r"WebServing: `host` must be a string, got None"):
        WebServing(host=None)
    server = WebServing()
    with pytest.raises(ValueError, match=r"WebServing.route: `path` must start with '/'"):
        server.route("echo", print, {})
    with pytest.raises(
        ValueError, match=r"WebServing.route: `method` must be one of 'GET', 'POST'"
    ):
        server.route("/echo", print, {}, method="PUT")
    with pytest.raises(TypeError, match=r"WebServing.route: `func` must be a callable"):
        server.route("/echo", None, {})
    with pytest.raises(TypeError, match=r"`arguments\['text'\]` must be a pair"):
        server.route("/echo", print, {"text": None})
    with pytest.raises(TypeError, match=r"`arguments\['text'\]\[1\]` must be True or False"):
        server.route("/echo", print, {"text": (None, "yes")})


# -- DataGenerator.to_dataset ----------------------------------------------


class OneSampleAtATime(DataGenerator):
    """bert4keras' to_dataset style: one sample per step, in data order."""

    def __iter__(self, random=False):
        for token_ids, label in self.data:
            yield [token_ids, [1] * len(token_ids)], [[label]]  # inputs, (label,)


DATA = [([5, 6, 7], 0), ([8], 1), ([9, 10], 1), ([11, 12, 13, 14], 0)]


@pytest.mark.skipif(ON_TENSORFLOW, reason="the TensorFlow backend builds the dataset")
def test_to_dataset_needs_tensorflow():
    gen = OneSampleAtATime(DATA, batch_size=2)
    with pytest.raises(RuntimeError, match=r"needs the TensorFlow backend.*gen.forfit\(\)"):
        gen.to_dataset(types=("float32", "float32"), shapes=([None], [None]))


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.data needs the TensorFlow backend")
def test_to_dataset_padded_named_batches():
    gen = OneSampleAtATime(DATA, batch_size=2)
    dataset = gen.to_dataset(
        types=[("float32", "float32"), ("float32",)],
        shapes=[([None], [None]), ([1],)],
        names=[("Input-Token", "Input-Segment"), ("Probas",)],
        padded_batch=True,
    )
    batches = list(dataset.take(3).as_numpy_iterator())
    inputs, targets = batches[0]  # a lone target name gives the tensor itself (Keras 3)
    assert set(inputs) == {"Input-Token", "Input-Segment"}
    np.testing.assert_array_equal(inputs["Input-Token"], [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(inputs["Input-Segment"], [[1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(targets, [[0], [1]])
    assert inputs["Input-Token"].dtype == np.float32
    np.testing.assert_array_equal(batches[1][0]["Input-Token"], [[9, 10, 0, 0], [11, 12, 13, 14]])
    np.testing.assert_array_equal(batches[2][0]["Input-Token"], [[5, 6, 7], [8, 0, 0]])  # endless


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.data needs the TensorFlow backend")
def test_to_dataset_fixed_shapes_and_one_name():
    class Fixed(DataGenerator):
        def __iter__(self, random=False):
            for token_ids, _ in self.data:
                yield (token_ids + [0] * 4)[:4]

    dataset = Fixed(DATA, batch_size=3).to_dataset(types="int32", shapes=[4], names="ids")
    first = next(iter(dataset))
    assert list(first) == ["ids"] and first["ids"].shape == (3, 4)
    assert first["ids"].numpy().tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 0, 0]]


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.data needs the TensorFlow backend")
def test_to_dataset_names_one_input_and_two_targets():
    class TwoTargets(DataGenerator):
        def __iter__(self, random=False):
            for token_ids, label in self.data:
                yield [token_ids], [[label], [len(token_ids)]]

    dataset = TwoTargets(DATA, batch_size=2).to_dataset(
        types=[("int32",), ("int32", "int32")],
        shapes=[([None],), ([1], [1])],
        names=[("token",), ("label", "length")],  # several target names stay a dict
        padded_batch=True,
    )
    inputs, targets = next(iter(dataset))
    assert list(inputs) == ["token"] and inputs["token"].numpy().tolist() == [[5, 6, 7], [8, 0, 0]]
    assert {k: v.numpy().tolist() for k, v in targets.items()} == {
        "label": [[0], [1]],
        "length": [[3], [1]],
    }


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.data needs the TensorFlow backend")
def test_to_dataset_trains_a_named_model():
    token = keras.Input((None,), name="Input-Token")
    segment = keras.Input((None,), name="Input-Segment")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.ops.expand_dims(token + segment, -1))
    probas = keras.layers.Dense(2, activation="softmax", name="Probas")(pooled)
    model = keras.Model([token, segment], probas)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    gen = OneSampleAtATime(DATA, batch_size=2)
    dataset = gen.to_dataset(  # as bert4keras' task_iflytek_multigpu.py
        types=[("float32", "float32"), ("float32",)],
        shapes=[([None], [None]), ([1],)],
        names=[("Input-Token", "Input-Segment"), ("Probas",)],
        padded_batch=True,
    )
    history = model.fit(dataset, steps_per_epoch=len(gen), epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.data needs the TensorFlow backend")
def test_to_dataset_errors():
    gen = OneSampleAtATime(DATA, batch_size=2)
    with pytest.raises(TypeError, match=r"to_dataset: `padded_batch` must be True or False"):
        gen.to_dataset("float32", [None], padded_batch="yes")
    with pytest.raises(ValueError, match=r"to_dataset: `shapes` .* does not match `types`"):
        gen.to_dataset(types=("float32", "float32"), shapes=([None],))
    with pytest.raises(TypeError, match=r"to_dataset: `types` holds 'text', which is not a dtype"):
        gen.to_dataset(types="text", shapes=[None])
    with pytest.raises(ValueError, match=r"`shapes` holds 'long' for a tensor of 'float32'"):
        gen.to_dataset(types="float32", shapes="long")
    with pytest.raises(ValueError, match=r"to_dataset: types must have 3 parts to match"):
        gen.to_dataset(types=("float32", "float32"), shapes=([None], [None]), names=("a", "b", "c"))
    with pytest.raises(TypeError, match=r"to_dataset: `names\[1\]` must be a tuple of str"):
        gen.to_dataset(types=("float32", "float32"), shapes=([None], [None]), names=[("a",), 3])
