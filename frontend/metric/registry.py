"""Name registries as MXNet's `mxnet.registry` builds them, for metrics and initializers.

A `Registry` maps lower-cased names (class names plus aliases) to subclasses of one base class.
`create` accepts an instance (returned as is), a name with constructor arguments, a config dict, or
the JSON text an initializer's `dumps()` writes (`'["uniform", {"scale": 0.07}]'`). Its failures, and
those of the optimizer registry, are `RegistryError` (unknown names, malformed specs, bad argument
values) and `RegistryTypeError` (specs and arguments of the wrong type).
"""

from __future__ import annotations

import json
import warnings

from ember.runtime.errors import MXNetError


class RegistryError(MXNetError, ValueError):
    """A name no registry holds, a malformed spec, or an argument value a class refuses. Also the
    ValueError MXNet raises here, so that code written for MXNet still catches it."""


class RegistryTypeError(MXNetError, TypeError):
    """A spec of the wrong type, or arguments a registered class does not take. Also the TypeError
    MXNet raises here."""


def construct(cls: type, args: tuple, kwargs: dict, what: str):
    """`cls(*args, **kwargs)`; the TypeError or ValueError of arguments it refuses comes back as
    RegistryTypeError or RegistryError naming `what`."""
    try:
        return cls(*args, **kwargs)
    except MXNetError:
        raise
    except TypeError as err:
        raise RegistryTypeError(f"cannot create {what}: {err}") from err
    except ValueError as err:
        raise RegistryError(f"cannot create {what}: {err}") from err


class Registry:
    """The classes registered under names for one base class (`nickname` names it in messages)."""

    def __init__(self, base_class: type, nickname: str):
        self.base_class = base_class
        self.nickname = nickname
        self.classes: dict[str, type] = {}

    def register(self, klass: type, name: str | None = None) -> type:
        """Register `klass` under `name` (default: its class name), lower-cased; usable as a decorator."""
        if not (isinstance(klass, type) and issubclass(klass, self.base_class)):
            raise RegistryTypeError(
                f"Can only register subclass of {self.base_class.__name__}, got {klass!r}"
            )
        key = (klass.__name__ if name is None else name).lower()
        previous = self.classes.get(key)
        if previous is not None and previous is not klass:
            warnings.warn(
                f"New {self.nickname} {klass.__module__}.{klass.__name__} registered with name {key} is "
                f"overriding existing {self.nickname} {previous.__module__}.{previous.__name__}",
                UserWarning,
                stacklevel=2,
            )
        self.classes[key] = klass
        return klass

    def alias(self, *aliases: str):
        """A class decorator registering the class under each of `aliases`."""

        def register_aliases(klass: type) -> type:
            for name in aliases:
                self.register(klass, name)
            return klass

        return register_aliases

    def create(self, *args, **kwargs):
        """An instance from a name (plus constructor arguments), a dict, a JSON string or an instance."""
        if args:
            spec, args = args[0], args[1:]
        elif self.nickname in kwargs:
            spec = kwargs.pop(self.nickname)
        else:
            raise RegistryTypeError(f"create() needs the {self.nickname} to create")
        if isinstance(spec, self.base_class):
            if args or kwargs:
                raise RegistryError(
                    f"{self.nickname} is already an instance. Additional arguments are invalid"
                )
            return spec
        if isinstance(spec, dict):
            return self.create(**spec)
        if not isinstance(spec, str):
            raise RegistryTypeError(f"{self.nickname} must be of string type, got {type(spec).__name__}")
        if spec.startswith(("[", "{")):
            name, params = self.parse_json(spec)
            return self.create(name, **params)
        key = spec.lower()
        if key not in self.classes:
            raise RegistryError(
                f"{spec} is not registered. Please register with {self.nickname}.register first "
                f"(registered {self.nickname}s: {', '.join(sorted(self.classes))})"
            )
        return construct(self.classes[key], args, kwargs, f"{self.nickname} {spec!r}")

    def parse_json(self, spec: str) -> tuple[str, dict]:
        """(name, arguments) from `'["name", {...}]'` or `'{"<nickname>": "name", ...}'`."""
        try:
            parsed = json.loads(spec)
        except (ValueError, RecursionError) as err:
            raise RegistryError(f"{self.nickname} spec {spec[:80]!r} is not valid JSON: {err}") from None
        if isinstance(parsed, dict) and self.nickname in parsed:
            return parsed.pop(self.nickname), parsed
        if isinstance(parsed, list) and len(parsed) == 2 and isinstance(parsed[1], dict):
            return parsed[0], parsed[1]
        raise RegistryError(
            f"{self.nickname} spec {spec[:80]!r} is neither [name, {{arguments}}] nor "
            f'{{"{self.nickname}": name, ...}}'
        )
