"""Decoding topic records in bulk: the same result as one by one, errors in their places."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from settlewatch.common.events import decode_event, decode_events, encode_event

PULSE = encode_event("pulse", orjson.dumps({"at": "2026-11-22T10:00:00+00:00", "source": "t"}))


def test_valid_values_decode_as_they_do_one_by_one() -> None:
    assert decode_events([PULSE, PULSE]) == [decode_event(PULSE), decode_event(PULSE)]


def test_a_bad_value_gets_its_error_in_its_place_and_the_others_still_decode() -> None:
    values = [PULSE, b"not json", PULSE + b"," + PULSE, b'{"v": 1, "kind": "pulse"}', PULSE]
    decoded = decode_events(values)
    assert [isinstance(d, ValidationError) for d in decoded] == [False, True, True, True, False]
    assert decoded[0] == decoded[4] == decode_event(PULSE)
