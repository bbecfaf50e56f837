"""What every settings dataclass shares: a plain-dict form that round-trips and refuses unknown keys."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T", bound="Settings")


class Settings:
    """Mixin for frozen dataclasses of settings (recorded in run.json, compared on resume)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Inverse of :meth:`to_dict`; an unknown key (say, a config from a newer version) is a ConfigError."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
