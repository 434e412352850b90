"""The strict per-message decoder: every message the fast scanner does not accept comes here.

It decodes one JSON message with a typed msgspec Struct into the same per-field ``kind`` and
``number`` codes the scanner produces (see :mod:`bayestream.schema.scan`), plus the decoded
Python strings, so one validator judges both paths alike.
"""

from __future__ import annotations

import calendar
import math
import re
from typing import Any

import msgspec

from bayestream.schema.reasons import Reason
from bayestream.schema.scan import (
    FIELDS,
    KIND_FALSE,
    KIND_NULL,
    KIND_NUMBER,
    KIND_STRING,
    KIND_TRUE,
)

KIND_OTHER = 7  # an array or object where a scalar is expected (strict path only)


class WireEvent(msgspec.Struct):
    """The event fields that matter; other fields are ignored. Values are typed loosely here
    on purpose: the validator turns a wrong type into a field-specific reason code."""

    key: Any = msgspec.UNSET
    metric: Any = msgspec.UNSET
    ts: Any = msgspec.UNSET
    value: Any = msgspec.UNSET
    trials: Any = msgspec.UNSET
    exposure: Any = msgspec.UNSET


# float_hook: a number beyond float64 range becomes +-inf, as on the fast path, so that it is
# judged by the field's validator (and ignored where the family does not use the field).
_DECODER = msgspec.json.Decoder(WireEvent, float_hook=float)
_FIELD_REASON = {
    "key": Reason.INVALID_KEY,
    "metric": Reason.INVALID_METRIC,
    "ts": Reason.INVALID_TS,
    "value": Reason.INVALID_VALUE,
    "trials": Reason.INVALID_TRIALS,
    "exposure": Reason.INVALID_EXPOSURE,
}
_PATH = re.compile(r"at `\$\.(\w+)")


class StrictResult(msgspec.Struct):
    """Outcome of decoding one message: a reason (bad), or per-field kinds and values."""

    reason: Reason | None
    detail: str
    kinds: list[int]
    numbers: list[float]
    strings: dict[str, str]


def decode_strict(raw: bytes) -> StrictResult:
    """Decode one message; never raises."""
    try:
        event = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        field = _PATH.search(str(exc))
        if field and field.group(1) in _FIELD_REASON:
            return _bad(_FIELD_REASON[field.group(1)], str(exc))
        return _bad(Reason.INVALID_JSON, str(exc))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return _bad(Reason.INVALID_JSON, str(exc))
    kinds: list[int] = []
    numbers: list[float] = []
    strings: dict[str, str] = {}
    for name in FIELDS:
        kind, number = _classify(getattr(event, name))
        kinds.append(kind)
        numbers.append(number)
        if kind == KIND_STRING:
            strings[name] = getattr(event, name)
    return StrictResult(None, "", kinds, numbers, strings)


def _bad(reason: Reason, detail: str) -> StrictResult:
    return StrictResult(reason, detail, [], [], {})


def _classify(value: Any) -> tuple[int, float]:
    if value is msgspec.UNSET:
        return 0, math.nan
    if value is True:
        return KIND_TRUE, math.nan
    if value is False:
        return KIND_FALSE, math.nan
    if value is None:
        return KIND_NULL, math.nan
    if isinstance(value, str):
        return KIND_STRING, math.nan
    if isinstance(value, int | float):
        try:
            return KIND_NUMBER, float(value)
        except OverflowError:
            return KIND_NUMBER, math.inf
    return KIND_OTHER, math.nan


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None when it is not one.

    The offset is required (``Z`` or ``+HH:MM``); leap seconds (``:60``) are refused.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    whole = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(9):
        oh, om = int(match.group(10)), int(match.group(11))
        if oh > 23 or om > 59:
            return None
        sign = 1 if match.group(9) == "+" else -1
        whole -= sign * (oh * 3600 + om * 60)
    fraction = float(match.group(7)) if match.group(7) else 0.0
    return whole + fraction


__all__ = ["KIND_OTHER", "StrictResult", "WireEvent", "decode_strict", "parse_rfc3339"]
