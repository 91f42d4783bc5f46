"""The ``json`` and ``ndjson`` codecs, writing exactly what ``JSON.stringify`` writes."""

from __future__ import annotations

import json as _jsonlib
import math
from decimal import Decimal
from typing import Any

from ._base import Codec, State
from ._bytes import string
from .errors import DecodeError, EncodeError

# --- JSON ----------------------------------------------------------------------------------


def _js_number(x: float) -> str:
    """Format a float the way JavaScript's ``Number.prototype.toString`` does."""
    if x != x or x in (math.inf, -math.inf):
        return "null"  # JSON.stringify writes null for NaN and the infinities
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exp)  # value = 0.<digits> * 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _is_array_index(key: str) -> bool:
    return (
        key.isdigit()
        and key.isascii()
        and (key == "0" or key[0] != "0")
        and (int(key) < 0xFFFFFFFF)
    )


def _js_key_order(obj: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Items in the order JS enumerates an object's keys: array indices first, ascending."""
    for k in obj:
        if not isinstance(k, str):
            raise EncodeError(f"JSON object keys must be str, got {type(k).__name__}")
    items = list(obj.items())
    indices = [kv for kv in items if _is_array_index(kv[0])]
    if not indices:
        return items
    indices.sort(key=lambda kv: int(kv[0]))
    return indices + [kv for kv in items if not _is_array_index(kv[0])]


def _stringify(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodeError(f"string is not valid unicode: {e}") from None
        out.append(_jsonlib.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_js_number(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for k, v in _js_key_order(value):
            if not first:
                out.append(",")
            first = False
            _stringify(k, out)
            out.append(":")
            _stringify(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _stringify(v, out)
        out.append("]")
    else:
        raise EncodeError(f"{type(value).__name__} is not JSON serialisable")


def stringify(value: Any) -> str:
    """``JSON.stringify`` with JavaScript's exact output for the same value."""
    out: list[str] = []
    try:
        _stringify(value, out)
    except RecursionError:
        raise EncodeError("value is nested too deeply") from None
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """``JSON.parse``: raises :class:`DecodeError` on anything that is not strict JSON."""
    try:
        return _jsonlib.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"invalid JSON: {e}") from None


class _Json(Codec[Any]):
    """A string holding ``JSON.stringify(value)`` (plus a newline for ndjson)."""

    __slots__ = ("_suffix",)

    def __init__(self, suffix: str) -> None:
        self._suffix = suffix

    def _text(self, value: Any) -> str:
        return stringify(value) + self._suffix

    def preencode(self, state: State, value: Any) -> None:
        string.preencode(state, self._text(value))

    def encode(self, state: State, value: Any) -> None:
        string.encode(state, self._text(value))

    def decode(self, state: State) -> Any:
        return parse_json(string.decode(state))


json_ = _Json("")
ndjson = _Json("\n")
