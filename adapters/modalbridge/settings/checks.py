"""The checks of setting values: their messages name the setting as the caller spelled it
(``"batch_size must be at least 1 (an integer), got 0"``), whichever class the value is given to, and
the strict scalar types every setting uses (``True`` is not a batch size, ``"8"`` is not a number)."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from pydantic import AfterValidator, Strict, BeforeValidator, ValidationError, ValidationInfo
from typing_extensions import Annotated

from modalbridge.media.fetch import FETCH_MAX_BYTES, FETCH_TIMEOUT_S, check_fetch_settings


# -- checks (their messages name the setting as the caller spelled it) --------------------------------


def _name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def number(phrase: str, minimum: float, *, integer: bool = True, allow_none: bool = False) -> BeforeValidator:
    """A number of at least ``minimum`` (an int unless ``integer=False``; never a bool), or ``None`` where
    allowed. Checked before pydantic's own type check, so every class gives the one message
    ``"<setting> must be <phrase>, got <value>"``."""
    kinds = (int,) if integer else (int, float)

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and allow_none:
            return value
        if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:
            raise ValueError(f"{_name(info)} must be {phrase}, got {value!r}")
        return value

    return BeforeValidator(check)


def one_of(choices: Iterable[str], allow_none: bool = False) -> AfterValidator:
    choices = tuple(choices)

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and allow_none:
            return value
        if value not in choices:
            listed = ", ".join(choices) + (" or None" if allow_none else "")
            raise ValueError(f"{_name(info)} must be one of {listed}, got {value!r}")
        return value

    return AfterValidator(check)


def non_empty(value: Any, info: ValidationInfo) -> Any:
    if not value:
        raise ValueError(f"{_name(info)} must be a non-empty string (a hub name or a local folder)")
    return value


def device_names(value: Any, info: ValidationInfo) -> Any:
    """One device name, or a non-empty list of them (a pool: kept as a tuple, so settings stay hashable)."""
    if not isinstance(value, (str, list, tuple, type(None))):
        raise ValueError(
            f"{_name(info)} must be a device name such as 'cpu' or 'cuda:0', or a list of them, got {value!r}"
        )
    if isinstance(value, (list, tuple)):
        if not all(isinstance(d, str) for d in value):
            raise ValueError(f"{_name(info)} must be a list of device names, got {list(value)!r}")
        if not value or not all(d and d != "auto" for d in value):
            raise ValueError(
                f"{_name(info)} must be a device name or a non-empty list of device names (not 'auto'), got {list(value)!r}"
            )
        return tuple(value)
    if value == "":
        raise ValueError(f"{_name(info)} must be a device name such as 'cpu' or 'cuda:0', or a list of them, got ''")
    return value


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


# Scalars are strict: True is not a batch size, "8" is not a number of frames (the command line converts
# its strings first).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an int is accepted
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
PathStr = Annotated[str, BeforeValidator(_fspath), Strict()]
Kwargs = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]
PositiveInt = Annotated[Int, number("at least 1 (an integer)", 1)]
OptionalPositiveInt = Annotated[Int | None, number("a positive integer or None", 1, allow_none=True)]


def checked_by(check: Callable[[Any], None]) -> AfterValidator:
    """A check that lives with the code it protects (e.g. :func:`modalbridge.media.fetch.check_fetch_settings`)."""

    def run(value: Any) -> Any:
        check(value)
        return value

    return AfterValidator(run)


def fetch_check(name: str) -> AfterValidator:
    values = {"timeout_s": FETCH_TIMEOUT_S, "max_bytes": FETCH_MAX_BYTES, "allowed_hosts": None, "allow_private": False}
    return checked_by(lambda value: check_fetch_settings(**{**values, name: value}))


class SettingsError(ValueError):
    """A setting's value is refused by a core class; the message names the setting and says why."""


def describe(error: ValidationError) -> str:
    """One line per refused value, naming the setting (pydantic's own report, without its boilerplate)."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        name = ".".join(str(part) for part in item["loc"])
        lines.append(message if not name or message.startswith(name) else f"{name}: {message}")
    return "; ".join(lines)
