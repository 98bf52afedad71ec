"""Tests for nlp4keras.snippets.padding: `sequence_padding` against a padding
built with plain Python loops (1-D, ragged 2-D, array items with a feature
tail, both modes, truncation, bucketed lengths), and `truncate_sequences`
against its definition."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp4keras.snippets import sequence_padding, truncate_sequences

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

# -- an independent padding: nested Python lists, built loop by loop -------


def _full(shape, value):
    return value if not shape else [_full(shape[1:], value) for _ in range(shape[0])]


def _pad_loops(x, lengths, value, pre):
    """Pad/truncate nested list `x` to `lengths` (the first len(lengths) dims)."""
    if not lengths:
        return x
    kept = [_pad_loops(child, lengths[1:], value, pre) for child in list(x)[: lengths[0]]]
    filler = [_full(lengths[1:], value) for _ in range(lengths[0] - len(kept))]
    return filler + kept if pre else kept + filler


def _longest(items, depth):
    """Longest extent at nesting `depth` over nested lists `items`."""
    if depth == 0:
        return max(len(x) for x in items)
    children = [child for x in items for child in x]
    return _longest(children, depth - 1) if children else 0


def _expected(items, lengths, value, mode):
    padded = [_pad_loops(x, lengths, value, mode == "pre") for x in items]
    return np.array(padded).reshape(len(items), *lengths)


ints = st.integers(-50, 50)
seqs_1d = st.lists(st.lists(ints, max_size=9), min_size=1, max_size=6)
seqs_2d = st.lists(st.lists(st.lists(ints, max_size=5), max_size=5), min_size=1, max_size=5)
modes = st.sampled_from(["post", "pre"])


@settings(max_examples=150, deadline=None)
@given(seqs_1d, st.one_of(st.none(), st.integers(0, 10)), st.integers(-3, 3), modes)
def test_1d_matches_loops(items, length, value, mode):
    lengths = [_longest(items, 0) if length is None else length]
    out = sequence_padding(items, length=length, value=value, mode=mode)
    assert out.shape == (len(items), lengths[0])
    np.testing.assert_array_equal(out, _expected(items, lengths, value, mode))


@settings(max_examples=150, deadline=None)
@given(seqs_2d, st.one_of(st.none(), st.tuples(st.integers(0, 6), st.none())), modes)
def test_ragged_2d_matches_loops(items, length, mode):
    lengths = [_longest(items, 0), _longest(items, 1)]
    if length is not None:
        lengths[0] = length[0]
    out = sequence_padding(items, length=length, value=-1, seq_dims=2, mode=mode)
    assert out.shape == (len(items), *lengths)
    np.testing.assert_array_equal(out, _expected(items, lengths, -1, mode))


@settings(max_examples=100, deadline=None)
@given(seqs_1d, modes)
def test_every_prefix_preserved(items, mode):
    out = sequence_padding(items, length=5, value=99, mode=mode)
    for row, x in zip(out, items):
        n = min(len(x), 5)
        data = row[5 - n :] if mode == "pre" else row[:n]
        rest = row[: 5 - n] if mode == "pre" else row[n:]
        assert list(data) == x[:n]  # truncation keeps the head in both modes
        assert all(v == 99 for v in rest)


def test_array_items_with_a_feature_tail():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(n, 3)).astype("float32") for n in (4, 1, 6)]
    out = sequence_padding(items, value=0.5, mode="pre")
    assert out.shape == (3, 6, 3) and out.dtype == np.float32
    for row, x in zip(out, items):
        np.testing.assert_array_equal(row[6 - len(x) :], x)
        assert np.all(row[: 6 - len(x)] == 0.5)


def test_square_matrices_seq_dims_2_match_numpy_loops():
    # e.g. GlobalPointer labels: one (n, n) matrix per text.
    rng = np.random.default_rng(1)
    items = [rng.integers(1, 9, size=(n, n)) for n in (3, 5, 2)]
    out = sequence_padding(items, seq_dims=2, length=(4, None))
    expected = np.zeros((3, 4, 5), dtype=items[0].dtype)
    for i, x in enumerate(items):
        for r in range(min(len(x), 4)):
            for c in range(x.shape[1]):
                expected[i, r, c] = x[r, c]
    np.testing.assert_array_equal(out, expected)


def test_int_length_applies_to_every_dim():
    out = sequence_padding([[[1, 2, 3]], [[4], [5], [6]]], length=2, seq_dims=2)
    np.testing.assert_array_equal(out, [[[1, 2], [0, 0]], [[4, 0], [5, 0]]])


def test_dtype_follows_data_and_can_be_set():
    assert sequence_padding([[1, 2], [3]]).dtype.kind == "i"
    assert sequence_padding([[1.5], [2.0, 3.0]]).dtype.kind == "f"
    assert sequence_padding([[], [1, 2]]).dtype.kind == "i"  # an empty item is no float
    assert sequence_padding([[], []]).shape == (2, 0)
    assert sequence_padding([[1], [2, 3]], dtype="int32").dtype == np.int32
    tokens = sequence_padding([["a", "bb"], ["c"]], value="[PAD]")
    assert tokens.tolist() == [["a", "bb"], ["c", "[PAD]"]]


@pytest.mark.parametrize(
    "longest, padded", [(1, 4), (4, 4), (5, 8), (8, 8), (9, 16), (16, 16), (0, 4)]
)
def test_length_buckets_round_up(longest, padded):
    items = [[7] * longest, [1]]
    out = sequence_padding(items, length_buckets=(16, 4, 8))  # order does not matter
    assert out.shape == (2, padded)
    np.testing.assert_array_equal(out[0, :longest], items[0])
    assert np.all(out[0, longest:] == 0)


@pytest.mark.parametrize("longest, padded", [(0, 0), (1, 8), (8, 8), (9, 16)])
def test_multiple_of_rounds_up(longest, padded):
    assert sequence_padding([[1] * longest], multiple_of=8).shape == (1, padded)


def test_buckets_apply_only_to_dims_without_a_length():
    items = [np.ones((3, 7)), np.ones((6, 2))]
    out = sequence_padding(items, seq_dims=2, length=(None, 5), length_buckets=(4, 8))
    assert out.shape == (2, 8, 5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 64), min_size=1, max_size=6), modes)
def test_bucketed_shape_is_the_smallest_bucket_that_fits(lengths, mode):
    buckets = (8, 16, 32, 64)
    out = sequence_padding([[1] * n for n in lengths], length_buckets=buckets, mode=mode)
    assert out.shape[1] == min(b for b in buckets if b >= max(lengths))
    assert out.sum() == sum(lengths)  # nothing cut, nothing added


def test_longer_than_largest_bucket_is_an_error():
    with pytest.raises(ValueError, match="more than the largest length bucket 8"):
        sequence_padding([[1] * 9], length_buckets=(4, 8))
    # with an explicit length, cutting is what was asked for
    assert sequence_padding([[1] * 9], length=8, length_buckets=(4, 8)).shape == (1, 8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(inputs=[]), "no inputs"),
        (dict(inputs=[[1]], mode="left"), "`mode` must be one of 'post', 'pre', got 'left'"),
        (dict(inputs=[[1]], seq_dims=0), "`seq_dims` must be an integer >= 1, got 0"),
        (dict(inputs=[[1]], length=(3, 3)), "expected seq_dims=1"),
        (dict(inputs=[[1]], length=-1), "`length` must be an integer >= 0, got -1"),
        (dict(inputs=[[1]], length_buckets=(4,), multiple_of=8), "not both"),
        (dict(inputs=[[1]], length_buckets=(0, 4)), r"`length_buckets\[0\]` must be >= 1"),
        (dict(inputs=[[1]], multiple_of=0), "`multiple_of` must be an integer >= 1, got 0"),
        (dict(inputs=[np.ones((2, 3)), np.ones((2, 4))]), "differ in shape after"),
        (dict(inputs=[[[1, 2], [3]]]), "differ in shape after the first seq_dims=1"),
        (dict(inputs=[[[[1, 2], [3]]]]), r"inputs\[0\]\[0\] is ragged after the first seq_dims=1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sequence_padding(**kwargs)


def test_a_number_where_a_sequence_belongs_is_named():
    with pytest.raises(TypeError, match=r"inputs\[1\] is 3 \(int\); expected a sequence"):
        sequence_padding([[1, 2], 3])


# -- truncate_sequences ---------------------------------------------------


def test_truncate_pops_from_the_longest_first_on_ties():
    a, b = [1, 2, 3, 4], [5, 6, 7]
    result = truncate_sequences(5, -1, a, b)
    assert result == [[1, 2], [5, 6, 7]]  # a: 4>3 pop, then 3=3 tie: a again
    assert result[0] is a and result[1] is b  # shortened in place


def test_truncate_with_per_sequence_indices():
    # keep a final [SEP] with -2; trim the second text from the left with 0
    first, second = ["C", "a1", "a2", "a3", "S"], ["b1", "b2", "b3", "b4", "S"]
    truncate_sequences(6, [-2, 0], first, second)  # 4 pops, alternating from first
    assert first == ["C", "a1", "S"] and second == ["b3", "b4", "S"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.integers(0, 30),
    st.sampled_from([-1, 0]),
)
def test_truncate_against_its_definition(lengths, maxlen, index):
    originals = [list(range(100 * k, 100 * k + n)) for k, n in enumerate(lengths)]
    sequences = [list(s) for s in originals]
    truncate_sequences(maxlen, index, *sequences)
    finals = [len(s) for s in sequences]
    assert sum(finals) == min(sum(lengths), maxlen)
    for original, s in zip(originals, sequences):
        # index -1 keeps a prefix, 0 a suffix
        assert s == (original[: len(s)] if index == -1 else original[len(original) - len(s) :])
        if len(s) < len(original):  # popped last when it was (one of) the longest
            assert all(len(s) >= n - 1 for n in finals)


def test_truncate_keeps_none_and_empty_in_place():
    a = [1, 2, 3]
    assert truncate_sequences(2, -1, a, None, []) == [[1, 2], None, []]


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((-1, -1, [1]), ValueError, "`maxlen` must be an integer >= 0, got -1"),
        ((1, [-1], [1, 2], [3]), ValueError, "1 indices for 2 sequences"),
        ((0, -1, (1, 2)), TypeError, "must be lists"),
        ((0, -3, [1, 2]), ValueError, "cannot pop index -3"),
    ],
)
def test_truncate_errors(args, error, message):
    with pytest.raises(error, match=message):
        truncate_sequences(*args)
