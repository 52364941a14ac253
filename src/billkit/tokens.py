"""Resume tokens: what an operation needs to be rebuilt in another process, checked before it is trusted.

A token holds the provider, the kind of work, its id and the adapter's *state* for that kind (ids, never
credentials). Two formats are read; one is written:

* **v2** (written): ``bk2.<payload>`` or, signed, ``bk2.<payload>.<mac>``; the payload is base64url of the
  raw-deflated canonical JSON ``{"v": 2, "provider", "kind", "id", "state"}``, so a bulk's token grows by a few bytes
  per item, not by its JSON. With a ``token_key`` (``AsyncClient(..., token_key=...)`` or ``BILLKIT_TOKEN_KEY``) the
  token carries the first 16 bytes of an HMAC-SHA256 of ``bk2.<payload>``, and a client with a key refuses a token
  without it or with another one.
* **v1** (read only): base64url of the JSON with ``"v": 1``, as billkit 0.1 wrote them. Stored tokens keep working;
  a client with a ``token_key`` refuses them (they are unsigned).

Decoding checks everything before anything is sent: the encoding, the size once inflated, the version (an int, not
a bool), the provider, and the state against the adapter's declared schema for that kind (:func:`check_state`). Any
problem raises :class:`~billkit.errors.TokenError` saying what.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import zlib
from collections.abc import Mapping
from typing import Any

import pydantic

from billkit.errors import TokenError

__all__ = ["MAX_TOKEN_STATE", "TOKEN_VERSION", "TokenKey", "check_state", "decode_token", "encode_token", "token_key"]

TOKEN_VERSION = 2
_PREFIX = "bk2."
#: the largest inflated token billkit reads (a 100,000-item bulk fits; a deflate bomb does not)
MAX_TOKEN_STATE = 32 * 1024 * 1024
_MAC_BYTES = 16


class TokenKey:
    """A key that signs and checks resume tokens; its value never shows (``repr`` is masked)."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            key = key.encode()
        if not isinstance(key, bytes) or len(key) < 16:
            raise TokenError("a token_key needs at least 16 bytes")
        self._key = key

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:_MAC_BYTES]

    def __repr__(self) -> str:
        return "TokenKey('**********')"

    def __reduce__(self) -> Any:
        raise TypeError("a billkit TokenKey is not picklable")


def token_key(value: str | bytes | TokenKey | None) -> TokenKey | None:
    return value if isinstance(value, TokenKey) or value is None else TokenKey(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


#: a W3C ``traceparent`` (version 00): the span that started the operation, for the reads of a resumed one to link to
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def encode_token(
    provider: str, kind: str, id: str, state: Mapping[str, Any], key: TokenKey | None = None, trace: str | None = None
) -> str:
    """``trace``: the ``traceparent`` of the span that started the operation (ids only, no secret), kept so that
    the status reads of the operation resumed in another process link to that span, not to the ``resume`` call."""
    body: dict[str, Any] = {"v": TOKEN_VERSION, "provider": provider, "kind": kind, "id": id, "state": state}
    if trace is not None:
        body["trace"] = trace
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    token = _PREFIX + _b64(packer.compress(raw) + packer.flush())
    if key is not None:
        token += "." + _b64(key.mac(token.encode()))
    return token


def decode_token(token: str, *, provider: str | None = None, key: TokenKey | None = None) -> dict[str, Any]:
    """Decode and check a resume token's envelope. Raises :class:`TokenError` with the reason."""
    if not isinstance(token, str) or not token:
        raise TokenError("a resume token must be a non-empty string")
    if token.startswith(_PREFIX):
        body = _decode_v2(token, key)
    else:
        if key is not None:
            raise TokenError("this client checks signed tokens (token_key) and this one is not signed")
        body = _decode_json(_unb64_or_raise(token))
    version = body.get("v")
    if type(version) is not int or version not in (1, TOKEN_VERSION):
        raise TokenError(f"resume token version {version!r} is not supported by this billkit (knows 1 and 2)")
    if (version == 1 and token.startswith(_PREFIX)) or (version == TOKEN_VERSION and not token.startswith(_PREFIX)):
        raise TokenError("resume token version does not match its format")
    for name, kind in (("provider", str), ("kind", str), ("id", str), ("state", dict)):
        if type(body.get(name)) is not kind:
            raise TokenError(f"resume token has no valid {name!r}")
    if provider is not None and body["provider"] != provider:
        raise TokenError(f"this token belongs to {body['provider']!r}, not to this {provider!r} client")
    trace = body.get("trace")
    if trace is not None and (type(trace) is not str or _TRACEPARENT.fullmatch(trace) is None):
        raise TokenError("resume token has an invalid 'trace' (a W3C traceparent of version 00 is expected)")
    return body


def _decode_v2(token: str, key: TokenKey | None) -> dict[str, Any]:
    parts = token[len(_PREFIX) :].split(".")
    if len(parts) not in (1, 2) or not parts[0]:
        raise TokenError("not a billkit resume token (malformed)")
    if key is not None:
        if len(parts) != 2:
            raise TokenError("this client checks signed tokens (token_key) and this one is not signed")
        signed = (_PREFIX + parts[0]).encode()
        if not hmac.compare_digest(key.mac(signed), _unb64_or_raise(parts[1])):
            raise TokenError("the token's signature does not match this client's token_key (forged or altered)")
    unpacker = zlib.decompressobj(-15)
    try:
        raw = unpacker.decompress(_unb64_or_raise(parts[0]), MAX_TOKEN_STATE)
    except zlib.error:
        raise TokenError("not a billkit resume token (it does not inflate)") from None
    if unpacker.unconsumed_tail or not unpacker.eof:
        raise TokenError("not a billkit resume token (truncated, or larger than billkit reads)")
    return _decode_json(raw)


def _unb64_or_raise(text: str) -> bytes:
    try:
        return _unb64(text)
    except (binascii.Error, ValueError):
        raise TokenError("not a billkit resume token (it does not decode)") from None


def _decode_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError("not a billkit resume token (it does not decode)") from None
    if not isinstance(body, dict) or "v" not in body:
        raise TokenError("not a billkit resume token (no version)")
    return body


def check_state(schemas: Mapping[str, type[pydantic.BaseModel]], kind: str, state: Mapping[str, Any]) -> None:
    """Check ``state`` against the schema declared for ``kind``; :class:`TokenError` names what is wrong."""
    schema = schemas.get(kind)
    if schema is None:
        known = ", ".join(sorted(schemas)) or "none"
        raise TokenError(f"resume token of unknown kind {kind!r} (this provider's kinds: {known})")
    try:
        schema.model_validate(state)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "state"
        raise TokenError(f"resume token state of kind {kind!r} is not valid: {where}: {first['msg']}") from None


class TokenState(pydantic.BaseModel):
    """Base of the adapters' token-state schemas: exact types, no unknown fields."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)
