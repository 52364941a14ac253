"""A sandbox's state as a JSON document: what :meth:`~billkit.sandboxing.Sandbox.save` writes and
:meth:`~billkit.sandboxing.Sandbox.load` reads (``billkit sandbox serve --state FILE``, the batch CLI's ``--sandbox``).

Data, not code: reading a file never runs code it names and never imports anything. The document is::

    {"format": "billkit-sandbox-state", "version": 1, "kind": "facturapi",
     "class": "billkit.providers.facturapi.sandbox:FacturapiSandbox", "state": {...}}

``kind`` is the sandbox's provider and ``class`` the sandbox class; a file of another format, version or kind is
refused. ``state`` is the sandbox's attributes, each value in JSON with a tagged encoding of what JSON lacks; a
tagged value is an object with one key that starts with ``$``:

=================================  ================================================================================
value                              encoded as
=================================  ================================================================================
None, bool, int, str, float        themselves (an infinite or NaN float: ``{"$float": "inf"}``)
list                               an array
dict with str keys                 an object; one with other keys, or a key starting with ``$``: ``{"$dict": [[k, v]]}``
tuple, set, frozenset              ``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$frozenset": [...]}``
bytes                              ``{"$bytes": "<base64>"}``
Decimal, UUID                      ``{"$decimal": "12.50"}``, ``{"$uuid": "..."}``
datetime, date, time, timedelta    ``{"$datetime": "<ISO 8601>"}``, ``$date``, ``$time``, ``{"$timedelta": [d, s, us]}``
Money                              ``{"$money": ["12.50", "EUR"]}``
random.Random                      ``{"$random": <its getstate()>}``
VirtualClock / SystemClock         ``{"$clock": {"now": ..., "wall": ..., "autojump": ...}}`` / ``{"$clock": "system"}``
an enum member                     ``{"$enum": {"class": "module:Name", "value": ...}}``
a pydantic model                   ``{"$model": {"class": "module:Name", "fields": {...}, "set": [...]}}``
a dataclass or plain object        ``{"$object": {"class": "module:Name", "state": {...}}}`` (every attribute)
=================================  ================================================================================

The allow-list for ``module:Name``: an enum, a pydantic model, a dataclass or a plain class (one whose instances are
their ``__dict__``: no ``__new__`` of its own, not an exception) defined in billkit (or in the module of the sandbox
class being loaded, for sandboxes written outside billkit), found among the modules already imported. It is rebuilt
without calling its ``__init__``: its attributes are set (a class's own ``__setstate__`` receives them). Any
other class, an unknown tag or a malformed value raises :class:`~billkit.errors.SandboxStateError` naming the path
of the value (``state['records']['inv_1']['stamp']``). So a new dict of dataclasses or pydantic models in a sandbox
saves and loads with no change here; a value of a type outside this table fails at save time, with its path.

A clock is saved as its time: the loaded sandbox gets a new :class:`~billkit.clock.VirtualClock` at the saved
virtual and wall time (nobody sleeps on it yet), or a new ``SystemClock``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import random
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from billkit.clock import SystemClock, VirtualClock
from billkit.errors import SandboxStateError
from billkit.money import Money

if TYPE_CHECKING:
    from billkit.sandboxing import Sandbox

__all__ = ["FORMAT", "VERSION", "decode", "dumps", "encode", "loads"]

FORMAT = "billkit-sandbox-state"
VERSION = 1

_CONTAINERS = {"$tuple": tuple, "$set": set, "$frozenset": frozenset}


def _is_model(obj: object) -> bool:
    pydantic = sys.modules.get("pydantic")  # a model exists only once pydantic was imported
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


def _is_model_class(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


def _is_record(cls: type) -> bool:
    """A class whose instances are their attributes: a dataclass, or a plain class (``object.__new__``, no base but
    ``object``'s line, not an exception or a sandbox) whose instances keep their state in ``__dict__``."""
    from billkit.sandboxing import Sandbox

    if not isinstance(cls, type) or type(cls) is not type or issubclass(cls, (BaseException, Sandbox)):
        return False
    return dataclasses.is_dataclass(cls) or (cls.__new__ is object.__new__ and "__dict__" in dir(cls))


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _custom(cls: type, method: str) -> bool:
    """Whether ``cls`` defines ``method`` itself (``object`` has a ``__getstate__`` of its own from 3.11 on)."""
    return getattr(cls, method, None) is not getattr(object, method, None)


class _Codec:
    """One encode or decode pass; ``home`` is the module of the sandbox class, whose classes are allowed too."""

    def __init__(self, home: str) -> None:
        self.home = home

    def allowed_module(self, module: str) -> bool:
        return module == "billkit" or module.startswith("billkit.") or module == self.home

    # -- encode ---------------------------------------------------------------------------------------------------
    def encode(self, value: Any, path: str) -> Any:
        kind = type(value)
        if value is None or kind in (bool, str, int):  # exactly: a str or int enum is tagged below
            return value
        if kind is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if kind is list:
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind is dict:
            if all(type(k) is str and not k.startswith("$") for k in value):
                return {k: self.encode(v, f"{path}[{k!r}]") for k, v in value.items()}
            return {"$dict": [[self.encode(k, f"{path}<key {k!r}>"), self.encode(v, f"{path}[{k!r}]")]
                              for k, v in value.items()]}  # fmt: skip
        if kind is tuple:
            return {"$tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if kind in (set, frozenset):
            items = [self.encode(v, f"{path}<item {v!r}>") for v in value]
            items.sort(key=lambda e: json.dumps(e, sort_keys=True))  # the same set is the same text
            return {"$set" if kind is set else "$frozenset": items}
        if kind is bytes:
            return {"$bytes": base64.b64encode(value).decode("ascii")}
        if kind is Decimal:
            return {"$decimal": str(value)}
        if kind is uuid.UUID:
            return {"$uuid": str(value)}
        if kind is dt.datetime:
            if value.tzinfo is not None and not isinstance(value.tzinfo, dt.timezone):
                raise SandboxStateError(f"{path}: a datetime in {value.tzinfo!r} (only fixed offsets are saved)",
                                        path=path)  # fmt: skip
            return {"$datetime": value.isoformat()}
        if kind is dt.date:
            return {"$date": value.isoformat()}
        if kind is dt.time:
            if value.tzinfo is not None:
                raise SandboxStateError(f"{path}: a time with a time zone cannot be saved", path=path)
            return {"$time": value.isoformat()}
        if kind is dt.timedelta:
            return {"$timedelta": [value.days, value.seconds, value.microseconds]}
        if kind is Money:
            return {"$money": [str(value.amount), value.currency]}
        if kind is random.Random:
            return {"$random": self.encode(value.getstate(), f"{path}<random state>")}
        if kind is VirtualClock:
            return {"$clock": {"now": value.now(), "wall": value.wall(), "autojump": value.autojump}}
        if kind is SystemClock:
            return {"$clock": "system"}
        if isinstance(value, enum.Enum):
            self.check_class(kind, path)
            return {"$enum": {"class": _name(kind), "value": self.encode(value.value, f"{path}.value")}}
        if _is_model(value):
            self.check_class(kind, path)
            fields = {name: getattr(value, name) for name in type(value).model_fields}
            fields.update(value.__pydantic_extra__ or {})
            return {"$model": {"class": _name(kind), "fields": self.encode(fields, path),
                               "set": sorted(value.model_fields_set)}}  # fmt: skip
        if _is_record(kind):
            self.check_class(kind, path)
            return {"$object": {"class": _name(kind), "state": self.encode(_object_state(value, path), path)}}
        raise SandboxStateError(
            f"{path}: a {kind.__module__}.{kind.__qualname__} cannot be saved in a sandbox state file (saved are "
            "JSON values, tuples, sets, Decimal, dates, Money, enums, pydantic models and dataclasses)",
            path=path,
        )

    def check_class(self, cls: type, path: str) -> None:
        if not self.allowed_module(cls.__module__) or "<locals>" in cls.__qualname__:
            raise SandboxStateError(
                f"{path}: {_name(cls)} is not defined in billkit (or beside the sandbox class), so it cannot be "
                "loaded back", path=path)  # fmt: skip

    # -- decode ---------------------------------------------------------------------------------------------------
    def decode(self, data: Any, path: str) -> Any:
        if data is None or isinstance(data, (bool, str, int, float)):
            return data
        if isinstance(data, list):
            return [self.decode(v, f"{path}[{i}]") for i, v in enumerate(data)]
        if not isinstance(data, dict):  # pragma: no cover - json.loads makes nothing else
            raise SandboxStateError(f"{path}: an unexpected {type(data).__name__}", path=path)
        tags = [k for k in data if k.startswith("$")]
        if not tags:
            return {k: self.decode(v, f"{path}[{k!r}]") for k, v in data.items()}
        if len(data) != 1:
            raise SandboxStateError(f"{path}: a tagged value has exactly one key, not {sorted(data)}", path=path)
        tag = tags[0]
        body = data[tag]
        reader = _READERS.get(tag)
        if reader is None:
            raise SandboxStateError(f"{path}: unknown tag {tag!r}", path=path)
        try:
            return reader(self, body, path)
        except SandboxStateError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError, InvalidOperation, AttributeError) as exc:
            raise SandboxStateError(f"{path}: a malformed {tag} value ({exc})", path=path) from exc

    def resolve(self, name: Any, path: str) -> type:
        """The class ``module:Qual.Name`` names, if it is on the allow-list; never imports anything."""
        if not isinstance(name, str) or name.count(":") != 1:
            raise SandboxStateError(f"{path}: a class name is 'module:Name', not {name!r}", path=path)
        module_name, qualname = name.split(":")
        module = sys.modules.get(module_name) if self.allowed_module(module_name) else None
        if module is None:
            why = "is not loaded" if self.allowed_module(module_name) else "is not a billkit module"
            raise SandboxStateError(f"{path}: class {name!r} is not allowed ({module_name!r} {why})", path=path)
        found: Any = module
        for part in qualname.split("."):
            if not part.isidentifier() or part.startswith("__"):
                raise SandboxStateError(f"{path}: class {name!r} is not allowed", path=path)
            found = getattr(found, part, None)
            if not isinstance(found, type):
                raise SandboxStateError(f"{path}: {name!r} does not name a class", path=path)
        if found.__module__ != module_name or found.__qualname__ != qualname:
            raise SandboxStateError(f"{path}: {name!r} is an alias of {_name(found)}, not allowed", path=path)
        cls: type = found
        return cls

    def body(self, body: Any, keys: set[str], path: str, tag: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not keys.issuperset(body) or "class" not in body:
            raise SandboxStateError(f"{path}: a {tag} value is an object with {sorted(keys)}", path=path)
        return body


def _object_state(value: Any, path: str) -> dict[str, Any]:
    cls = type(value)
    if _custom(cls, "__getstate__"):
        state = value.__getstate__()
        if not isinstance(state, dict):
            raise SandboxStateError(f"{path}: {_name(cls)}.__getstate__ does not return a dict", path=path)
        return dict(state)
    state = dict(getattr(value, "__dict__", {}))
    for klass in cls.__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                state[slot] = getattr(value, slot)
    return state


# -- the readers of the tagged values ---------------------------------------------------------------------------


def _read_float(codec: _Codec, body: Any, path: str) -> float:
    if body not in ("inf", "-inf", "nan"):
        raise ValueError(f"{body!r} is not inf, -inf or nan")
    return float(body)


def _read_dict(codec: _Codec, body: Any, path: str) -> dict[Any, Any]:
    if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
        raise ValueError("expected a list of [key, value] pairs")
    out: dict[Any, Any] = {}
    for i, (k, v) in enumerate(body):
        key = codec.decode(k, f"{path}<key {i}>")
        out[key] = codec.decode(v, f"{path}[{key!r}]")
    return out


def _container(kind: Callable[[list[Any]], Any]) -> Callable[[_Codec, Any, str], Any]:
    def read(codec: _Codec, body: Any, path: str) -> Any:
        if not isinstance(body, list):
            raise ValueError("expected a list")
        return kind([codec.decode(v, f"{path}[{i}]") for i, v in enumerate(body)])

    return read


def _text(parse: Callable[[str], Any]) -> Callable[[_Codec, Any, str], Any]:
    def read(codec: _Codec, body: Any, path: str) -> Any:
        if not isinstance(body, str):
            raise ValueError("expected a string")
        return parse(body)

    return read


def _read_timedelta(codec: _Codec, body: Any, path: str) -> dt.timedelta:
    if not isinstance(body, list) or len(body) != 3 or not all(type(x) is int for x in body):
        raise ValueError("expected [days, seconds, microseconds]")
    return dt.timedelta(days=body[0], seconds=body[1], microseconds=body[2])


def _read_money(codec: _Codec, body: Any, path: str) -> Money:
    if not isinstance(body, list) or len(body) != 2 or not all(isinstance(x, str) for x in body):
        raise ValueError("expected [amount, currency]")
    return Money(Decimal(body[0]), body[1])


def _read_random(codec: _Codec, body: Any, path: str) -> random.Random:
    state = codec.decode(body, f"{path}<random state>")
    rng = random.Random()
    rng.setstate(state)  # checks the shape itself (TypeError / ValueError)
    return rng


def _read_clock(codec: _Codec, body: Any, path: str) -> VirtualClock | SystemClock:
    if body == "system":
        return SystemClock()
    if not isinstance(body, dict) or set(body) != {"now", "wall", "autojump"}:
        raise ValueError("expected 'system' or {now, wall, autojump}")
    now, wall, autojump = body["now"], body["wall"], body["autojump"]
    if not all(type(x) in (int, float) for x in (now, wall)) or type(autojump) is not bool:
        raise ValueError("now and wall are numbers, autojump a boolean")
    return VirtualClock(float(now), autojump=autojump, wall_start=float(wall))


def _read_enum(codec: _Codec, body: Any, path: str) -> enum.Enum:
    body = codec.body(body, {"class", "value"}, path, "$enum")
    cls = codec.resolve(body["class"], path)
    if not issubclass(cls, enum.Enum):
        raise SandboxStateError(f"{path}: {body['class']!r} is not an enum", path=path)
    return cls(codec.decode(body.get("value"), f"{path}.value"))


def _read_model(codec: _Codec, body: Any, path: str) -> Any:
    body = codec.body(body, {"class", "fields", "set"}, path, "$model")
    cls = codec.resolve(body["class"], path)
    if not _is_model_class(cls):
        raise SandboxStateError(f"{path}: {body['class']!r} is not a pydantic model", path=path)
    fields = codec.decode(body.get("fields", {}), path)
    fields_set = body.get("set", [])
    if not isinstance(fields, dict) or not isinstance(fields_set, list):
        raise ValueError("fields is an object and set a list")
    model: Any = cls
    return model.model_construct(_fields_set={str(f) for f in fields_set}, **fields)


def _read_object(codec: _Codec, body: Any, path: str) -> Any:
    body = codec.body(body, {"class", "state"}, path, "$object")
    cls = codec.resolve(body["class"], path)
    if not _is_record(cls):
        raise SandboxStateError(f"{path}: {body['class']!r} is not a dataclass or a plain class", path=path)
    state = codec.decode(body.get("state", {}), path)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError("its state is an object")
    for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
        if f.name not in state:  # a field added since the file was written gets its default
            if f.default is not dataclasses.MISSING:
                state[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                state[f.name] = f.default_factory()
    obj: Any = object.__new__(cls)
    if _custom(cls, "__setstate__"):
        obj.__setstate__(state)
    else:
        for key, value in state.items():
            object.__setattr__(obj, key, value)  # a frozen dataclass too
    return obj


_READERS: dict[str, Callable[[_Codec, Any, str], Any]] = {
    "$float": _read_float,
    "$dict": _read_dict,
    "$tuple": _container(tuple),
    "$set": _container(set),
    "$frozenset": _container(frozenset),
    "$bytes": _text(lambda s: base64.b64decode(s.encode("ascii"), validate=True)),
    "$decimal": _text(Decimal),
    "$uuid": _text(uuid.UUID),
    "$datetime": _text(dt.datetime.fromisoformat),
    "$date": _text(dt.date.fromisoformat),
    "$time": _text(dt.time.fromisoformat),
    "$timedelta": _read_timedelta,
    "$money": _read_money,
    "$random": _read_random,
    "$clock": _read_clock,
    "$enum": _read_enum,
    "$model": _read_model,
    "$object": _read_object,
}


# -- the document -------------------------------------------------------------------------------------------------


def encode(box: Sandbox) -> dict[str, Any]:
    """The state document of ``box`` (JSON-ready)."""
    cls = type(box)
    codec = _Codec(cls.__module__)
    state = box.__getstate__()
    return {"format": FORMAT, "version": VERSION, "kind": box.provider, "class": _name(cls),
            "state": codec.encode(state, "state")}  # fmt: skip


def dumps(box: Sandbox) -> str:
    """``box``'s state as JSON text (keys in the order the sandbox keeps them)."""
    return json.dumps(encode(box), ensure_ascii=False, allow_nan=False, indent=1)


def decode(document: Any, expected: type[Sandbox], source: str = "sandbox state") -> Sandbox:
    """The sandbox ``document`` describes; it must be of class ``expected`` or a subclass of it."""
    from billkit.sandboxing import Sandbox

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SandboxStateError(f"{source} is not a billkit sandbox state file (format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise SandboxStateError(f"{source} is a sandbox state file of format version {document.get('version')!r}; "
                                f"this billkit reads version {VERSION}")  # fmt: skip
    kind, name = document.get("kind"), document.get("class")
    cls = _sandbox_class(kind, name, expected)
    if cls is None:
        wanted = f"a {expected.provider} sandbox" if expected.provider else "a sandbox this billkit knows"
        raise SandboxStateError(f"{source} holds a {kind!r} sandbox ({name!r}), not {wanted}")
    codec = _Codec(cls.__module__)
    try:
        state = codec.decode(document.get("state"), "state")
    except RecursionError:
        raise SandboxStateError(f"{source}: its state is nested too deeply", path="state") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise SandboxStateError(f"{source}: its state is not an object of attributes", path="state")
    box = cls.__new__(cls)
    assert isinstance(box, Sandbox)
    box.__setstate__(state)
    return box


def loads(text: str | bytes, expected: type[Sandbox], source: str = "sandbox state") -> Sandbox:
    """The sandbox a state file's text describes (see :func:`decode`)."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SandboxStateError(f"{source} is not a billkit sandbox state file (not JSON: {exc!r})") from exc
    return decode(document, expected, source)


def _sandbox_class(kind: Any, name: Any, expected: type[Sandbox]) -> type[Sandbox] | None:
    """The sandbox class of a file: ``expected`` itself or one of its subclasses, with that provider and name.

    Only classes already defined are candidates; a billkit provider's sandbox module is imported through the
    provider registry (trusted configuration, not the file) when the file names that provider."""
    if not isinstance(kind, str) or not isinstance(name, str):
        return None

    def find() -> type[Sandbox] | None:
        stack: list[type[Sandbox]] = [expected]
        while stack:
            cls = stack.pop()
            if cls.provider == kind and _name(cls) == name:
                return cls
            stack.extend(cls.__subclasses__())
        return None

    found = find()
    if found is None:
        from billkit.client import PROVIDERS, adapter_class

        if kind in PROVIDERS:
            try:
                adapter_class(kind).make_sandbox()  # imports that provider's sandbox module
            except Exception:  # a provider missing from the build: the file's class stays unknown
                return None
            found = find()
    return found
