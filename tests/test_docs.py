"""The README's quick start and CI stay in step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## 快速开始", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)]


def test_quick_start_is_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "pip install" in commands[0] and "automation demo" in commands[0]
    assert "pip install -e '.[test]'" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = quick_start_commands()[1]
    assert any(line.strip() == test_command for line in ci.splitlines()), test_command


def _commands() -> list[tuple[str, object]]:
    import click

    from automation.cli import cli

    out: list[tuple[str, object]] = []

    def walk(group: click.Group, prefix: str) -> None:
        for name, cmd in sorted(group.commands.items()):
            full = f"{prefix} {name}".strip()
            if isinstance(cmd, click.Group):
                walk(cmd, full)
            else:
                out.append((full, cmd))

    walk(cli, "")
    return out


def test_every_command_and_option_is_documented_with_an_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = "\n".join(re.findall(r"```(?:bash|sh|powershell|bat|cmd)?\n(.*?)```", readme, re.S))
    missing = []
    for name, cmd in _commands():
        if f"automation {name}" not in code and not re.search(rf"automation (--\S+ \S+ )*{name}\b", code):
            missing.append(f"example of `automation {name}`")
        for param in cmd.params:  # type: ignore[attr-defined]
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in readme:
                    missing.append(f"`{name} {opt}`")
    for opt in ("--config", "--workspace", "--debug"):
        if opt not in readme:
            missing.append(opt)
    assert not missing, "README lacks: " + ", ".join(missing)


def test_every_config_key_is_documented():
    import dataclasses

    from automation import config as cfg

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = {**cfg.SECTIONS, "units": cfg.UnitSpec}
    missing = []
    for section, klass in sections.items():
        if f"[{section}]" not in readme and f"[[{section}]]" not in readme:
            missing.append(f"[{section}]")
        for f in dataclasses.fields(klass):
            key = {"emails": "email"}.get(f.name, f.name)
            if f"`{key}`" not in readme and f"{key} =" not in readme:
                missing.append(f"[{section}] {key}")
    for key in ("workspace", "template", "[groups]"):
        if key not in readme:
            missing.append(key)
    assert not missing, "README lacks: " + ", ".join(missing)


def test_every_key_in_the_bundled_config_is_known():
    """config.toml documents only real keys: loading refuses unknown ones (a typo would be ignored)."""
    from automation.config import load_config

    config = load_config(ROOT / "config.toml")
    assert len(config.units) == 37 and set(config.groups) == {"各县（市、区）政府", "市直有关部门"}
