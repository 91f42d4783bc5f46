"""compact-encoding, byte-compatible with the JS ``compact-encoding`` package.

Codecs carry the JS names (``uint``, ``int``, ``buffer``, ``string``, ``fixed32``,
``array(codec)``, ...); JS camelCase names become snake_case (``optionalBuffer`` is
``optional_buffer``, ``ipv4Address`` is ``ipv4_address``).

>>> from protomux import encoding as c
>>> c.encode(c.uint, 300).hex()
'fd2c01'
>>> c.decode(c.array(c.string), bytes.fromhex('02026869 02796f'))
['hi', 'yo']

Every decoder raises :class:`DecodeError` (a ``ValueError``) on truncated, overlong or
out-of-range input; encoders raise :class:`EncodeError` on values they cannot represent.
"""

from ._base import (
    MAX_ARRAY_LENGTH,
    MAX_SAFE_INTEGER,
    Codec,
    State,
    decode,
    encode,
)
from ._bytes import (
    buffer,
    fixed,
    fixed8,
    fixed16,
    fixed24,
    fixed32,
    fixed64,
    optional_buffer,
    raw,
    string,
    utf8,
)
from ._composite import array, frame, none, uint32array
from ._json import json_, ndjson, parse_json, stringify
from ._net import (
    Address,
    ip,
    ip_address,
    ipv4,
    ipv4_address,
    ipv6,
    ipv6_address,
)
from ._numbers import (
    bool_,
    float32,
    float64,
    int8,
    int16,
    int24,
    int32,
    int40,
    int48,
    int56,
    int64,
    int_,
    port,
    uint,
    uint8,
    uint16,
    uint24,
    uint32,
    uint32be,
    uint40,
    uint48,
    uint56,
    uint64,
    uint64be,
)
from .errors import CompactEncodingError, DecodeError, EncodeError

# The JS names that collide with Python builtins or modules.
int = int_
bool = bool_
json = json_

__all__ = [
    "MAX_ARRAY_LENGTH",
    "MAX_SAFE_INTEGER",
    "Address",
    "Codec",
    "CompactEncodingError",
    "DecodeError",
    "EncodeError",
    "State",
    "array",
    "bool",
    "bool_",
    "buffer",
    "decode",
    "encode",
    "fixed",
    "fixed8",
    "fixed16",
    "fixed24",
    "fixed32",
    "fixed64",
    "float32",
    "float64",
    "frame",
    "int",
    "int8",
    "int16",
    "int24",
    "int32",
    "int40",
    "int48",
    "int56",
    "int64",
    "int_",
    "ip",
    "ip_address",
    "ipv4",
    "ipv4_address",
    "ipv6",
    "ipv6_address",
    "json",
    "json_",
    "ndjson",
    "none",
    "optional_buffer",
    "parse_json",
    "port",
    "raw",
    "string",
    "stringify",
    "uint",
    "uint8",
    "uint16",
    "uint24",
    "uint32",
    "uint32array",
    "uint32be",
    "uint40",
    "uint48",
    "uint56",
    "uint64",
    "uint64be",
    "utf8",
]
