"""The structure note and the code agree: every module is described, and no layer imports above itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "automation"

#: Layers from the bottom up (docs/architecture.md, "Layers"); a module may import its own layer or lower.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("clock", "errors", "fsutil", "config", "model", "text", "units", "workdays", "workspace", "data", "office", "rounds"),
    ("ledger",),
    ("tasks",),
    ("workbook",),
    ("collect",),
    ("mail",),
    ("progress",),
    ("remind",),
    ("service", "demo", "actions", "agenda"),
    ("cli", "__main__", "web"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def top(dotted: str) -> str:
    """``automation.collect.safety.pool`` → ``collect``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path, dotted: str) -> list[tuple[int, str]]:
    """Every ``automation.*`` module a file imports (module level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("automation")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "automation":
                found += [(node.lineno, f"automation.{a.name}") for a in node.names]
            elif name.startswith("automation."):
                found.append((node.lineno, name))
    return found


def test_every_module_has_a_layer():
    unknown = {top(m) for m in modules() if top(m) and top(m) not in RANK}
    assert not unknown, f"add these to LAYERS and to docs/architecture.md: {sorted(unknown)}"


def test_no_layer_imports_above_itself():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        dotted = ".".join(rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts)
        own = top(dotted)
        if not own:
            continue
        for line, target in imports(path, dotted):
            other = top(target)
            if other and other in RANK and RANK[other] > RANK[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {target} ({other})")
    assert not bad, "\n".join(bad)


def test_every_module_is_in_the_architecture_note():
    note = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    mentioned = set(re.findall(r"`([a-z_./]+?)(?:\.py)?/?`", note))
    missing = []
    for dotted in modules():
        if dotted == "automation":
            continue
        rel = dotted.removeprefix("automation.").replace(".", "/")
        if rel not in mentioned and rel.rpartition("/")[2] not in mentioned:
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not mention: {missing}"


def test_only_the_ledger_runs_sql():
    pattern = re.compile(r"\.execute(many|script)?\(|\b(SELECT|INSERT INTO|DELETE FROM)\b")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "ledger" in path.relative_to(PACKAGE).parts:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_700_lines():
    big = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700}
    assert not big, big
