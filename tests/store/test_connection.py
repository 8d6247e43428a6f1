"""Opening the database."""

from __future__ import annotations

import pytest

from tether.errors import StoreError
from tether.store import Store


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open") as caught:
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(caught.value)  # the password stays out of messages
