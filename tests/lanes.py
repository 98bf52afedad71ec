"""Which lane of `make test` runs which test.

`make test` runs the suite once per backend: one lane each, JAX first. Two
kinds of tests need not run in every lane, and say so with a marker:

- `@pytest.mark.backend_free`: the result does not depend on the lane's
  backend (tokenizers, text utilities, checkpoint file readers, data
  pipelines, subprocesses that choose their own backend): it runs in the
  first lane only.
- `@pytest.mark.spread`: the cases of a parametrized matrix run the same
  backend code on different inputs (model families through the same cached
  decoding, bert4keras scripts through the same layers): each case runs in
  one lane, the cases dealt round the lanes, so every backend runs a share.

`make test` sets NLP4KERAS_TEST_LANE="i/n" (lane i of n) for this; without it
(plain `pytest`, or `make test TEST_SPLIT=0`) every test runs.
"""

import os
import zlib

import keras
import pytest

BACKEND = keras.backend.backend()
LANE_VARIABLE = "NLP4KERAS_TEST_LANE"


def only_on(backend, why):
    """Skip the calling test module unless the lane's backend is `backend`."""
    if BACKEND != backend:
        pytest.skip(f"{why}; this lane's backend is {BACKEND}", allow_module_level=True)


def current_lane(value=None):
    """(lane, lanes) from NLP4KERAS_TEST_LANE="i/n", or None when unset."""
    value = os.environ.get(LANE_VARIABLE, "") if value is None else value
    if not value:
        return None
    try:
        lane, lanes = (int(part) for part in value.split("/"))
    except ValueError:
        lane = lanes = -1
    if not 0 <= lane < lanes:
        raise pytest.UsageError(f"{LANE_VARIABLE}={value!r}: expected 'i/n' with 0 <= i < n")
    return lane, lanes


def lane_of(function, case_index, lanes):
    """The lane of case `case_index` of a spread test function (its node id
    without the case): dealt from a lane that depends on the function's
    name, so small matrices do not all start in lane 0."""
    return (zlib.crc32(function.encode()) + case_index) % lanes


def split_items(items, lane, lanes):
    """(kept, left to other lanes) of the collected items."""
    kept, left, cases = [], [], {}
    for item in items:
        if item.get_closest_marker("backend_free"):
            runs_in = 0
        elif item.get_closest_marker("spread"):
            function = item.nodeid.split("[")[0]
            cases[function] = cases.get(function, -1) + 1
            runs_in = lane_of(function, cases[function], lanes)
        else:
            runs_in = lane
        (kept if runs_in == lane else left).append(item)
    return kept, left
