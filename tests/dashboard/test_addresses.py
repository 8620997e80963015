"""``--dashboard [HOST:]PORT`` parsing."""

from __future__ import annotations

import pytest

from actorflow.dashboard import parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8765", ("127.0.0.1", 8765)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:0", ("::1", 0))],
)
def test_dashboard_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "x:99999", "8765:"])
def test_bad_dashboard_addresses_name_both_forms(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)
