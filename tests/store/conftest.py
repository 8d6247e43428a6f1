from __future__ import annotations

import pytest

from tests.store.rows import unique_model


@pytest.fixture
def model() -> str:
    return unique_model()
