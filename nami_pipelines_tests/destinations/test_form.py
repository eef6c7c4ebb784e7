"""The Identify form body is what `requests` itself would send, for any text."""

import random
import string
from urllib.parse import parse_qs, urlencode

import pytest

from nami_pipelines.destinations.form import form_encoded

SAMPLES = [
    "",
    "plain_text.1-2~3",
    "a b+c%20d&e=f",
    "".join(chr(code) for code in range(32, 127)),
    '[{"user_id":"u-1","user_properties":{"$set":{"namiml_device_ids":["d 1"]}}}]',
    "héllo ☃ 𝄞 \n\t\x00",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_form_body_is_the_standard_encoding_and_decodes_back(text: str) -> None:
    fields = {"api_key": "key", "identification": text}

    body = form_encoded(fields)

    assert body == urlencode(fields).encode()
    assert parse_qs(body.decode(), keep_blank_values=True) == {
        name: [value] for name, value in fields.items()
    }


def test_random_texts_encode_as_the_standard_library_does() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "éß☃"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert form_encoded({"f": text}) == urlencode({"f": text}).encode(), text
