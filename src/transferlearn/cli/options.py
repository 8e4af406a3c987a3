"""``tl train`` / ``tl lr-find`` options generated from :class:`~transferlearn.config.TrainConfig`, the way
``HfArgumentParser`` turns a dataclass into arguments: field ``max_length`` -> ``--max-length``, a ``Literal`` ->
choices, a bool -> ``--x/--no-x``, the field's description -> help. Each option is declared once, in the config."""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from typing import Any, Literal, Optional

import typer

from ..config import TrainConfig

# a list or dict on the command line is written as YAML (--head-hidden "[256, 128]"); report_to takes "a,b"
_YAML_FIELDS = ("head_hidden",)


def _choices(annotation) -> list[str] | None:
    if typing.get_origin(annotation) is Literal:
        return [str(v) for v in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _choices(args[0])
    return None


def _cli_type(annotation) -> type:
    """bool / int / float stay themselves; everything else is read as text and validated by the config."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return annotation if annotation in (bool, int, float) else str


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def config_parameters(exclude: tuple[str, ...] = (), model=TrainConfig) -> list[inspect.Parameter]:
    params = []
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        kind, flag = _cli_type(field.annotation), option_name(name)
        choices = _choices(field.annotation)
        help_text = field.description or ""
        if choices and kind is str:  # typer shows an Enum's values as the choices and refuses others
            kind = enum.Enum(name, {c: c for c in choices}, type=str)
        # options shown under their config group (TrainConfig's fields declare it); other configs under one panel
        panel = (field.json_schema_extra or {}).get("group")
        panel = f"{panel} options" if panel else None
        if kind is bool:
            option = typer.Option(None, f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False,
                                  rich_help_panel=panel)
        else:
            option = typer.Option(None, flag, help=help_text, show_default=False, rich_help_panel=panel)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[kind]))
    return params


def with_config_options(exclude: tuple[str, ...] = (), model=TrainConfig):
    """Decorator: the command gains one option per field of ``model`` (a pydantic config: TrainConfig, ServeConfig);
    they arrive as ``overrides`` (None = not given), parsed into the config's own types."""

    def decorate(func):
        own = [p for p in inspect.signature(func).parameters.values() if p.name != "overrides"]
        generated = config_parameters(exclude, model)
        names = {p.name for p in generated}

        @functools.wraps(func)
        def command(**kwargs):
            overrides = {k: _parse(k, kwargs.pop(k)) for k in list(kwargs) if k in names}
            return func(**kwargs, overrides=overrides)

        command.__signature__ = inspect.Signature(own + generated)
        return command

    return decorate


def _parse(name: str, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if value is not None and name in _YAML_FIELDS:
        import yaml

        return yaml.safe_load(value)
    return value


def parse_sets(values: list[str] | None) -> dict:
    """``--set KEY=VALUE`` (YAML values) for any config key."""
    import yaml

    parsed = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return parsed
