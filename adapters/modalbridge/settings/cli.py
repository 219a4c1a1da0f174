"""The command-line flags of the settings (:func:`add_cli_options`), with the declared docs and checks."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable

from pydantic import ValidationError


from modalbridge.settings.checks import Bool
from modalbridge.settings.declaration import SETTINGS, Setting

# -- command line ----------------------------------------------------------------------------------------


def _cli_type(setting: Setting) -> Callable[[str], Any]:
    """An argparse type that checks a value exactly as the settings classes do."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(setting.annotation)
    flag = setting.cli

    def convert(text: str) -> Any:
        try:
            return adapter.validate_python(_parse_number(text))  # "8" -> 8 here only: settings are strict
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ").replace("value ", f"{flag} ", 1)
            raise argparse.ArgumentTypeError(message) from None

    return convert


def _parse_number(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def add_cli_options(
    group: Any,
    setting_names: Iterable[str],
    *,
    defaults: dict[str, Any] | None = None,
    notes: dict[str, str] | None = None,
) -> None:
    """Add the command-line flags of ``setting_names`` to an argparse parser or group, with the declared
    docs and checks. A flag not given is ``None`` (so a stored collection configuration or the declared
    default applies; a switch is ``False``), unless ``defaults`` names another default; ``notes`` add to
    a flag's help."""
    defaults, notes = defaults or {}, notes or {}
    for name in setting_names:
        setting = SETTINGS[name]
        if setting.cli is None:
            raise ValueError(f"setting {name!r} has no command-line flag")
        default = defaults.get(name)
        help_text = setting.cli_doc or setting.doc
        if name in notes:
            help_text += f" ({notes[name]})"
        elif default is not None:
            help_text += f" (default: {default})"
        help_text = help_text.replace("%", "%%")
        if setting.annotation is Bool:
            group.add_argument(setting.cli, dest=name, action="store_true", default=bool(default), help=help_text)
            continue
        if name == "device":  # one device on the command line
            group.add_argument(setting.cli, dest=name, default=default, metavar="DEVICE", help=help_text)
            continue
        metavar = "N" if "int" in str(setting.annotation) else name.upper()
        group.add_argument(
            setting.cli, dest=name, type=_cli_type(setting), default=default, metavar=metavar, help=help_text
        )
