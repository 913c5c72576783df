"""compact_json: the text of the standard encoder (so digests and part files do not change), whatever it holds."""

import json
import math

import pytest

from preprocgate.hashing import compact_json, digest_json


@pytest.mark.parametrize(
    "value",
    [
        {"counts": '0\\1"o' * 1000, "size": [480, 640], "score": 1.2e-05, "b": [1.25, -0.0, 3]},  # RLE-like ASCII
        {"name": "café ☕", "n": 1},  # non-ASCII: escaped as \\u00e9 by the standard encoder
        {"ctrl": "a\nb\tc\x00\x7f", "nan": math.nan, "inf": -math.inf},
        [[10, [{"z": 1, "a": 2}]], [9, []]],
    ],
)
def test_compact_json_is_the_standard_encoders_text(value: object) -> None:
    standard = json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert compact_json(value) == standard
    assert compact_json(value).isascii()


def test_digests_are_those_of_the_standard_text() -> None:
    import hashlib

    value = {"é": [1, 2.5], "counts": "\\x" * 10}
    standard = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    assert digest_json(value) == hashlib.sha256(standard.encode()).hexdigest()
