"""The lanes of `make test` (lanes.py): over all lanes every test runs, a
backend_free test in the first lane only, each spread case in exactly one
lane, unmarked tests in every lane."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lanes import LANE_VARIABLE, current_lane, split_items

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.backend_free


class FakeItem:
    def __init__(self, nodeid, marker=None):
        self.nodeid, self.marker = nodeid, marker

    def get_closest_marker(self, name):
        return name if name == self.marker else None


def items():
    spread = [FakeItem(f"t.py::test_matrix[{i}]", "spread") for i in range(49)]
    small = [FakeItem(f"t.py::test_pair[{i}]", "spread") for i in range(2)]
    free = [FakeItem(f"t.py::test_text[{i}]", "backend_free") for i in range(5)]
    plain = [FakeItem(f"t.py::test_model[{i}]") for i in range(4)]
    return spread + small + free + plain


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_every_test_runs_in_the_lanes_it_should(lanes):
    everything = items()
    kept = [split_items(everything, lane, lanes)[0] for lane in range(lanes)]
    for item in everything:
        runs_in = [lane for lane in range(lanes) if item in kept[lane]]
        if item.marker is None:
            assert runs_in == list(range(lanes)), item.nodeid
        elif item.marker == "backend_free":
            assert runs_in == [0], item.nodeid
        else:
            assert len(runs_in) == 1, item.nodeid
    for lane in range(lanes):  # a big matrix is dealt evenly
        share = [i for i in kept[lane] if "test_matrix" in i.nodeid]
        assert 49 // lanes <= len(share) <= -(-49 // lanes)


def test_split_keeps_the_collection_order():
    everything = items()
    kept, left = split_items(everything, 1, 3)
    assert kept == [item for item in everything if item in kept]
    assert sorted(map(id, kept + left)) == sorted(map(id, everything))


@pytest.mark.parametrize("value", ["3/3", "-1/2", "a/b", "1", "0/0"])
def test_a_bad_lane_is_named(value):
    with pytest.raises(pytest.UsageError, match=LANE_VARIABLE):
        current_lane(value)


def test_unset_means_every_test_runs():
    assert current_lane("") is None
    assert current_lane("1/3") == (1, 3)


def collected(lane):
    """The test ids pytest collects from test_generation_t5.py in `lane`."""
    env = dict(os.environ, **{LANE_VARIABLE: lane})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_generation_t5.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_make_tests_lanes_together_run_the_whole_file():
    lanes = [collected(f"{lane}/2") for lane in range(2)]  # two pytest runs: the hook wired in
    everything = set().union(*lanes)
    spread = {test for test in everything if "equals_uncached" in test or "transformers" in test}
    assert len(spread) == 6 + 6 + 3  # greedy, beam (cached vs uncached), vs transformers
    for test in spread:  # each case in one lane
        assert sum(test in lane for lane in lanes) == 1, test
    for test in everything - spread:  # unmarked: every lane
        assert all(test in lane for lane in lanes), test
