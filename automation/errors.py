"""Errors the user sees as one line.

Every error that reaches the CLI is an :class:`AutomationError` whose message names the file,
row, cell or unit and says what to do.  The CLI prints ``Error: <message>`` and exits non-zero;
a traceback appears only with ``--debug``.
"""

from __future__ import annotations


class AutomationError(Exception):
    """Base class for errors with a message meant for the office staff."""

    exit_code = 1


class InputError(AutomationError):
    """An input file (task table, returned workbook, template) cannot be used."""


class ConfigError(AutomationError):
    """config.toml is missing, malformed or inconsistent."""


class UnknownUnitError(AutomationError):
    """A unit name that matches nothing in the registry."""

    def __init__(self, name: str, suggestions: list[str], where: str = "") -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"相近的单位：{'、'.join(suggestions)}。" if suggestions else ""
        place = f"{where}：" if where else ""
        super().__init__(
            f"{place}未知单位“{name}”。{hint}请在 config.toml 的 [[units]] 中登记该单位或为其添加别名（aliases）。"
        )


class LedgerError(AutomationError):
    """The ledger refuses an operation (e.g. replacing a table that was already sent out)."""
