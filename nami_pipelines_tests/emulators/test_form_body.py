"""The emulator reads form bodies exactly as `parse_qs` would, escapes of either case included."""

import pytest

from nami_pipelines.emulators.form_body import parse_form


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            b"api_key=k&identification=%5B%7B%22a%22%3A1%7D%5D",
            {"api_key": "k", "identification": '[{"a":1}]'},
        ),
        (b"identification=%5b%7b%22a%22%3a1%7d%5d", {"identification": '[{"a":1}]'}),
        # A literal "%22" is sent as %2522: unescaped once, never twice.
        (b"v=%2522", {"v": "%22"}),
        (b"v=a+b%2Bc", {"v": "a b+c"}),
        (b"v=%E2%82%AC", {"v": "\u20ac"}),
        (b"v=%ZZ&w=%2", {"v": "%ZZ", "w": "%2"}),
        (b"v=1&v=2", {"v": "2"}),
        (b"&&flag&v=", {"flag": "", "v": ""}),
        (b"v=a=b", {"v": "a=b"}),
    ],
)
def test_a_form_body_reads_as_the_standard_parser_reads_it(body: bytes, fields: dict[str, str]):
    assert parse_form(body) == fields
