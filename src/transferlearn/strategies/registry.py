"""The strategy registry: each strategy registers itself with a decorator (timm's ``@register_model``)."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Strategy

REGISTRY: dict[str, type[Strategy]] = {}


def register(name: str, description: str):
    """Class decorator: ``--strategy NAME[:ARG]`` builds this class; ``description`` is what ``tl strategies``
    shows."""

    def add(cls: type[Strategy]) -> type[Strategy]:
        cls.registered_name, cls.summary = name, description
        REGISTRY[name] = cls
        return cls

    return add


def parse_strategy(spec: str) -> Strategy:
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name not in REGISTRY:
        raise ConfigError(f"unknown strategy '{spec}'. Known: {', '.join(sorted(REGISTRY))}")
    cls = REGISTRY[name]
    return cls(name=name, arg=cls.parse_arg(name, arg or None), description=cls.summary)


def int_arg(name: str, arg: str | None, required: bool) -> str | None:
    if arg is None:
        if required:
            raise ConfigError(f"strategy '{name}' needs a number, e.g. {name}:4")
        return None
    if not arg.isdigit():
        raise ConfigError(f"strategy '{name}:{arg}': '{arg}' is not a non-negative integer")
    return arg
