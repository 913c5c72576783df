"""compact_json: the text of the standard encoder (so digests and part files do not change), whatever it holds."""

import json
import math

import pytest

from preprocgate import hashing
from preprocgate.hashing import compact_json, digest_json, results_json


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


def test_dump_digest_streams_the_canonical_text_and_parts_hold_the_same_texts(tmp_path) -> None:
    """dump_digest equals the digest of canonical JSON over [[id, records], ...] (a stored baseline's digests
    stay valid), fed whole or image by image as a writer does; a part file is byte for byte the compact JSON of
    its results, and its texts feed the digest; an image out of order breaks the stream."""
    from preprocgate.cache import DumpCache, part_texts
    from preprocgate.fileio import atomic_write_json
    from preprocgate.keys import DumpDigest, dump_digest

    record = {"bbox": [1.25, 2.0, 3.0, 4.5], "score": 1e-05, "category_id": 2, "image_id": 0}
    results = {
        3: [{**record, "segmentation": {"counts": "0\\\\o" * 50, "size": [4, 5]}}],
        10: [],
        7: [{**record, "note": "é\x7f", "score": math.nan}],
    }
    expected = digest_json([[i, results[i]] for i in sorted(results)])
    assert dump_digest(results) == expected
    cache = DumpCache(tmp_path)
    streamed = DumpDigest()
    for name, part in (("a", {3: results[3], 7: results[7]}), ("b", {10: results[10]})):
        texts = part_texts(part)
        cache.write_texts("k", name, texts)
        streamed.add_part(texts)
    assert streamed.ok and streamed.ids == [3, 7, 10] and streamed.hexdigest() == expected
    for name, part in (("a", {3: results[3], 7: results[7]}), ("b", {10: results[10]})):
        atomic_write_json(tmp_path / "reference.json", {"results": {str(k): v for k, v in part.items()}}, compact=True)
        assert (
            cache.folder("k").joinpath(f"part-{name}.json").read_bytes() == (tmp_path / "reference.json").read_bytes()
        )
    late = DumpDigest()
    late.add_part({10: b"[]"})
    late.add_part({3: b"[]"})
    assert not late.ok and late.ids == [10]


RLE = "".join(chr(48 + (i * 7919) % 64) for i in range(5000))  # COCO's RLE characters, backslash (92) among them


@pytest.mark.parametrize(
    ("counts", "note", "fast"),
    [
        (RLE, None, True),
        (RLE[:60], None, False),  # short: not worth setting aside
        (RLE + '"', None, False),  # a quote: escaped the standard way
        (RLE + "\x01", None, False),  # a control character
        (RLE + "é", None, False),  # non-ASCII
        (RLE + "\x7f", None, False),  # DEL, which the standard encoder escapes
        (RLE, "\x00", False),  # the mark elsewhere in the records
    ],
)
def test_results_json_is_compact_json_of_coco_results(monkeypatch, counts: str, note: str | None, fast: bool) -> None:
    """``results_json`` sets long RLE strings aside, encodes the rest and puts them back escaped by hand: the
    text is ``compact_json``'s in every case, and the hand-escaped way is taken only where it is safe."""
    record = {"image_id": 3, "category_id": 1, "bbox": [1.25, 2.0, 3.0, 4.5], "score": math.nan}
    records = [
        {**record, "segmentation": {"size": [480, 640], "counts": counts}},
        record,
        {**record, "segmentation": {"size": [480, 640], "counts": counts[::-1]}},
    ]
    if note is not None:
        records[1] = {**record, "note": note}
    encoded: list[object] = []

    def spy(value: object, **options: object) -> str:
        encoded.append(value)
        return compact_json(value, **options)

    monkeypatch.setattr(hashing, "compact_json", spy)
    assert results_json(records, allow_nan=True) == compact_json(records, allow_nan=True).encode("ascii")
    assert (encoded[-1] is not records) == fast
    assert results_json([], allow_nan=True) == b"[]"


def test_results_json_puts_strings_escaped_by_the_caller_back_as_they_are() -> None:
    """``escaped``: each record's counts as the GPU escaped it, short strings too; the text is still
    ``compact_json``'s, and a record without a mask takes no string."""
    record = {"image_id": 3, "category_id": 1, "bbox": [1.25, 2.0, 3.0, 4.5], "score": 0.5}
    counts = ["0\\1o", "ab\\" * 40, "xyz"]
    records = [{**record, "segmentation": {"size": [4, 4], "counts": c}} for c in counts]
    records.insert(1, record)
    escaped = [json.dumps(r["segmentation"]["counts"])[1:-1].encode() if "segmentation" in r else b"" for r in records]
    assert results_json(records, escaped, allow_nan=True) == compact_json(records, allow_nan=True).encode("ascii")
    wrong = [b"X" * len(e) for e in escaped]  # taken as given: no scan of the strings
    assert b'"XXXX' in results_json(records, wrong)
