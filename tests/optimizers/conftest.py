"""Fixtures of the optimizer tests."""

import pytest
from optimizers import reference as ref


@pytest.fixture(params=sorted(ref.BASES))
def base(request):
    """(keras base optimizer class, its kwargs, a factory of its numpy twin)."""
    return ref.BASES[request.param]
