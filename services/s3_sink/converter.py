"""Record values to JSON lines, byte for byte as Kafka Connect writes them.

The connector's value path is ``JsonConverter`` (``schemas.enable=false``) followed by
``JsonFormat``'s record writer, and both leave marks on the bytes:

- the converter parses the JSON and turns every object into a ``java.util.HashMap``, so
  keys come out in HashMap iteration order (bucket order of ``String.hashCode()``), not
  in the order the producer sent them;
- integers become ``long`` (values beyond 64 bits wrap), other numbers ``double`` (parsed
  through BigDecimal, so ``-0.0`` loses its sign); Jackson prints doubles with
  ``Double.toString`` (``1.0E7``, ``1.0E-4``) and infinities as the strings
  ``"Infinity"``/``"-Infinity"``;
- Jackson's UTF-8 generator escapes control characters with upper-case hex
  (``\\u001F``) and writes every UTF-16 surrogate as an escape (an emoji becomes
  ``\\uD83D\\uDE00``), never as raw 4-byte UTF-8;
- the parser reads one root value and ignores what follows it, except that a root number
  must be followed by whitespace; empty input is a null value.

Known differences, all outside what the pipeline produces: doubles follow the JDK 19+
``Double.toString`` (shortest digits); JDK 11-18, which many Connect runtimes use, print
some doubles between about 1e16 and 1e25 with extra digits (JDK-4511638:
``4.4566000000000003E21`` for ``4.4566E21``). Checked against Jackson on JDK 17: no
difference over 100,000 coordinate-like and 2-decimal values. An object with more than 8
keys colliding in one bucket of a HashMap of 64 or more buckets becomes a tree bin in
Java, whose order is not emulated. Jackson's limits on nesting depth and string length
differ from Python's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

# HashMap internals (java.util.HashMap, JDK 8+).
_INITIAL_CAPACITY = 16
_TREEIFY_THRESHOLD = 8
_MIN_TREEIFY_CAPACITY = 64
_ORDER_CACHE_LIMIT = 4096

_JSON_WHITESPACE = " \t\r\n"
_INT64_SPAN = 1 << 64
_INT64_MIN = -(1 << 63)
_TWO_DIGITS = Context(prec=2, rounding=ROUND_HALF_EVEN)

# Python's encoder writes control characters with lower-case hex (Jackson: upper case).
_LOWER_HEX_ESCAPE = re.compile(r"\\u00[01][a-f]")
# Bytes that start a 4-byte UTF-8 sequence (a supplementary character) map to 1: a
# translate() and a membership test cost far less than a regex over the text.
_UTF8_LEAD_OF_FOUR = bytes(1 if b >= 0xF0 else 0 for b in range(256))
# The longest decimal integer that surely fits in 64 bits.
_SAFE_INT_DIGITS = 18
_STRING_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff\U00010000-\U0010ffff]')


class ConversionError(ValueError):
    """A record value that JsonConverter would reject (a DataException in Connect)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


# The message Kafka Connect's JsonConverter puts on every DataException it raises for
# unparseable bytes; the parser's own reason travels in ``detail``.
CONVERTER_ERROR_MESSAGE = (
    "Converting byte[] to Kafka Connect data failed due to serialization error: "
)


class JsonLineConverter:
    """Turns record value bytes into the line JsonFormat writes for them (no separator).

    Most records go through Python's C encoder; the parse hooks and a few cheap checks
    flag the ones Jackson would print differently, which take the exact serializer.
    Not thread-safe: one instance per consuming thread.
    """

    def __init__(self) -> None:
        self._orders: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._needs_exact = False
        self._decoder = json.JSONDecoder(
            object_pairs_hook=self._hashmap,
            parse_float=self._float,
            parse_int=self._int,
            parse_constant=_reject_constant,
        )
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
        )

    def convert(self, value: bytes | None) -> bytes | None:
        """The JSON line for a value, or None for a null value (tombstone, empty, ``null``)."""
        if value is None:
            return None
        self._needs_exact = False
        parsed = self._parse(value)
        if parsed is None:
            return None
        return self._serialize(parsed)

    def _parse(self, value: bytes) -> Any:
        try:
            text = value.decode(json.detect_encoding(value))
        except UnicodeDecodeError as exc:
            raise ConversionError(f"invalid {exc.encoding} input: {exc.reason}") from None
        start = 0
        while start < len(text) and text[start] in _JSON_WHITESPACE:
            start += 1
        if start == len(text):
            return None
        try:
            parsed, end = self._decoder.raw_decode(text, start)
        except RecursionError:
            raise ConversionError("JSON nested too deeply") from None
        except ValueError as exc:
            raise ConversionError(str(exc)) from None
        if end < len(text) and not isinstance(parsed, (dict, list, str)):
            follower = text[end]
            if isinstance(parsed, (int, float)) and parsed is not True and parsed is not False:
                if follower not in _JSON_WHITESPACE:
                    raise ConversionError(
                        f"expected space separating root-level values at char {end}"
                    )
            elif follower.isalnum() or follower in "_$":
                raise ConversionError(f"unrecognized token at char {start}")
        return parsed

    def _serialize(self, parsed: Any) -> bytes:
        if not self._needs_exact:
            text = self._encoder.encode(parsed)
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate, which Jackson escapes
                pass
            else:
                if not _strings_differ(text, data):
                    return data
        try:
            return _jackson(parsed).encode("utf-8")
        except RecursionError:
            raise ConversionError("JSON nested too deeply") from None

    def _hashmap(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # dict() keeps a duplicate key at its first position with its last value, like
        # Jackson's ObjectNode, which is what JsonConverter copies into the HashMap.
        obj = dict(pairs)
        keys = tuple(obj)
        order = self._orders.get(keys)
        if order is None:
            if len(self._orders) >= _ORDER_CACHE_LIMIT:
                self._orders.clear()
            order = self._orders[keys] = java_hashmap_order(keys)
        if order == keys:
            return obj
        return {k: obj[k] for k in order}

    def _float(self, literal: str) -> float:
        x = float(literal)
        # Python prints these differently from Double.toString (or not at all).
        if not 1e-3 <= abs(x) < 1e7 and (x != 0.0 or literal.startswith("-")):
            self._needs_exact = True
        return x

    def _int(self, literal: str) -> int:
        if len(literal.lstrip("-")) > _SAFE_INT_DIGITS:
            self._needs_exact = True
        return int(literal)


def _strings_differ(text: str, data: bytes) -> bool:
    """True if Python's output holds a string Jackson escapes differently."""
    return ("\\u00" in text and _LOWER_HEX_ESCAPE.search(text) is not None) or (
        not text.isascii() and 1 in data.translate(_UTF8_LEAD_OF_FOUR)
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard token {name!r} is not allowed")


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` over UTF-16 code units, as an unsigned 32-bit value."""
    h = 0
    for ch in s:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            h = (31 * h + 0xD800 + (cp >> 10)) & 0xFFFFFFFF
            cp = 0xDC00 + (cp & 0x3FF)
        h = (31 * h + cp) & 0xFFFFFFFF
    return h


def java_hashmap_order(keys: Sequence[str]) -> tuple[str, ...]:
    """Iteration order of a ``new HashMap<>()`` after putting ``keys`` in this order."""
    capacity = _INITIAL_CAPACITY
    bins: list[list[tuple[int, str]]] = [[] for _ in range(capacity)]
    for size, key in enumerate(keys, start=1):
        h = java_string_hash(key)
        h ^= h >> 16
        bucket = bins[h & (capacity - 1)]
        bucket.append((h, key))
        # A long bin in a small table makes HashMap grow instead of building a tree.
        if len(bucket) > _TREEIFY_THRESHOLD and capacity < _MIN_TREEIFY_CAPACITY:
            bins, capacity = _grow(bins, capacity)
        if size > capacity * 3 // 4:
            bins, capacity = _grow(bins, capacity)
    return tuple(key for bucket in bins for _, key in bucket)


def _grow(
    bins: list[list[tuple[int, str]]], capacity: int
) -> tuple[list[list[tuple[int, str]]], int]:
    capacity *= 2
    grown: list[list[tuple[int, str]]] = [[] for _ in range(capacity)]
    for bucket in bins:
        for h, key in bucket:
            grown[h & (capacity - 1)].append((h, key))
    return grown, capacity


def java_double(x: float) -> str:
    """A double as Jackson writes it: ``Double.toString`` (JDK 19+), infinities quoted."""
    if math.isinf(x):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    if x == 0.0:
        return "0.0"
    ax = abs(x)
    _, digit_tuple, exponent = Decimal(repr(ax)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    sci = exponent + len(digit_tuple) - 1
    if len(digits) == 1:
        # Java picks the 2-digit decimal closest to x when one digit would do, which
        # only differs for the tiniest subnormals (4.9E-324, not 5e-324).
        closest = _TWO_DIGITS.plus(Decimal(ax))
        if float(closest) == ax:
            _, digit_tuple, exponent = closest.as_tuple()
            assert isinstance(exponent, int)
            digits = "".join(map(str, digit_tuple)).rstrip("0")
            sci = exponent + len(digit_tuple) - 1
    sign = "-" if x < 0 else ""
    if 1e-3 <= ax < 1e7:
        point = sci + 1
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{sci}"


def java_string(s: str) -> str:
    """A JSON string literal as Jackson's UTF-8 generator writes it."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    short = _STRING_ESCAPES.get(ch)
    if short is not None:
        return short
    cp = ord(ch)
    if cp > 0xFFFF:
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
    return f"\\u{cp:04X}"


def _jackson(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str((value - _INT64_MIN) % _INT64_SPAN + _INT64_MIN)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, str):
        return java_string(value)
    if isinstance(value, list):
        return "[" + ",".join(map(_jackson, value)) + "]"
    return "{" + ",".join(f"{java_string(k)}:{_jackson(v)}" for k, v in value.items()) + "}"
