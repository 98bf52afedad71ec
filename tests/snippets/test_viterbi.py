"""numpy ViterbiDecoder against brute force over every label path (exact
argmax, float64), with and without start/end constraints; the input is left
untouched; bad input is refused with a clear error."""

import itertools

import numpy as np
import pytest

from nlp4keras.snippets import ViterbiDecoder

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only


def brute_force_best(nodes, trans, starts=None, ends=None):
    """The best path by scoring all K ** T of them."""
    best, best_score = None, -np.inf
    for path in itertools.product(range(len(trans)), repeat=len(nodes)):
        if starts is not None and path[0] not in starts:
            continue
        if ends is not None and path[-1] not in ends:
            continue
        score = sum(nodes[t, y] for t, y in enumerate(path))
        score += sum(trans[a, b] for a, b in zip(path, path[1:]))
        if score > best_score:
            best, best_score = path, score
    return np.array(best)


@pytest.mark.parametrize(
    "starts,ends", [(None, None), ([0, 2], None), (None, [3]), ([1, 3], [0, 1])]
)
@pytest.mark.parametrize("seed", range(4))
def test_decode_is_brute_force_argmax(seed, starts, ends):
    rng = np.random.default_rng(seed)
    trans = rng.normal(size=(4, 4))
    decoder = ViterbiDecoder(trans, starts=starts, ends=ends)
    for steps in range(1, 6):
        nodes = 2 * rng.normal(size=(steps, 4))
        path = decoder.decode(nodes)
        assert path.shape == (steps,) and np.issubdtype(path.dtype, np.integer)
        np.testing.assert_array_equal(path, brute_force_best(nodes, trans, starts, ends))


def test_constraints_override_strong_scores_and_leave_input_alone():
    trans = np.zeros((3, 3))
    nodes = np.array([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 50.0]])
    original = nodes.copy()
    assert list(ViterbiDecoder(trans).decode(nodes)) == [0, 0, 2]
    assert list(ViterbiDecoder(trans, starts=[1], ends=[0, 1]).decode(nodes)) == [1, 0, 0]
    np.testing.assert_array_equal(nodes, original)  # bert4keras edited it in place


def test_transitions_steer_the_path():
    # Flat emissions: the only structure comes from trans, which rewards 0 -> 1 -> 2 -> 0.
    trans = np.full((3, 3), -5.0)
    trans[0, 1] = trans[1, 2] = trans[2, 0] = 1.0
    path = ViterbiDecoder(trans, starts=[1]).decode(np.zeros((5, 3)))
    assert list(path) == [1, 2, 0, 1, 2]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="square"):
        ViterbiDecoder(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least one"):
        ViterbiDecoder(np.zeros((3, 3)), starts=[])
    with pytest.raises(ValueError, match="outside"):
        ViterbiDecoder(np.zeros((3, 3)), ends=[3])
    with pytest.raises(ValueError, match="nodes"):
        ViterbiDecoder(np.zeros((3, 3))).decode(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="nodes"):
        ViterbiDecoder(np.zeros((3, 3))).decode(np.zeros((0, 3)))
