"""The package's import rule, read from the source: rooms by role, imports that run one way.

    level 0  config, core            core: keras.ops only, imports nothing of ours but itself
    level 1  data, models            each may import level 0, not each other
    level 2  training, inference     each may import levels 0-1, not each other
    level 3  export, evaluation, app each may import levels 0-2 except training, not each other
    level 4  cli                     anything; imported only by the ``python -m`` entry modules

Every ``import`` counts, the ones inside functions too: a lazy import against the rule is the
same backwards dependency, only later. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorize_tf"

# room -> the rooms it may import (besides itself)
ALLOWED = {
    "config": set(),
    "core": set(),
    "data": {"config", "core"},
    "models": {"config", "core"},
    "presets": set(),  # the shipped preset folders; its __main__ is an entry module
    "training": {"config", "core", "data", "models"},
    "inference": {"config", "core", "data", "models"},
    "export": {"config", "core", "data", "models", "inference"},
    "evaluation": {"config", "core", "data", "models", "inference"},
    "app": {"config", "core", "data", "models", "inference"},
    "cli": {
        "config",
        "core",
        "data",
        "models",
        "training",
        "inference",
        "export",
        "evaluation",
        "app",
    },  # fmt: skip
}
# ``python -m colorize_tf.X`` entry modules: one line that calls cli.
ENTRY_MODULES = {"train", "evaluate", "colorize"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(node) -> list[tuple[int, str]]:
    """(line, imported colorize_tf module) of one import statement; ``from colorize_tf.x import
    y`` counts as importing ``colorize_tf.x.y`` when y is a module."""
    if isinstance(node, ast.Import):
        return [(node.lineno, a.name) for a in node.names if a.name.startswith("colorize_tf")]
    if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
        return []
    if not node.module.startswith("colorize_tf"):
        return []
    found = []
    for alias in node.names:
        target = f"{node.module}.{alias.name}"
        base = PACKAGE.parent.joinpath(*target.split("."))
        is_module = base.with_suffix(".py").exists() or (base / "__init__.py").exists()
        found.append((node.lineno, target if is_module else node.module))
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every import in the file, lazy ones (inside functions) included."""
    tree = ast.parse(path.read_text(), str(path))
    return [found for node in ast.walk(tree) for found in _imports_of(node)]


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_lives_in_a_known_room():
    rooms = {_room(_module_name(p)) for p in _files()} - {""}
    assert rooms <= set(ALLOWED) | ENTRY_MODULES, rooms - set(ALLOWED) - ENTRY_MODULES


def test_imports_follow_the_rule():
    broken = []
    for path in _files():
        module = _module_name(path)
        room = _room(module)
        entry = room in ENTRY_MODULES or path.name == "__main__.py"
        for line, target in _imports(path):
            target_room = _room(target)
            if not target_room or target_room == room:
                continue
            if entry:
                ok = target_room == "cli"
            elif target_room == "cli":
                ok = False
            else:
                ok = target_room in ALLOWED[room]
            if not ok:
                broken.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({room}) imports {target}"
                )
    assert not broken, "imports against the rule:\n" + "\n".join(broken)


def _import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, lazy imports (inside functions) included."""
    modules = {_module_name(p) for p in _files()}
    graph: dict[str, set[str]] = {}
    for path in _files():
        edges = set()
        for _, target in _imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != _module_name(path):
                edges.add(target)
        graph[_module_name(path)] = edges
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycle():
    """Imports between modules form no cycle, lazy ones included: a cycle closed by an import
    inside a function is two modules that cannot be understood (or moved) one without the
    other, however late the second import runs."""
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_rule_test_sees_a_backwards_import():
    """The checker itself fails on a planted violation: a core module importing training."""
    planted = PACKAGE / "core" / "_planted_violation.py"
    planted.write_text("from colorize_tf.training import gan\n")
    try:
        with pytest.raises(AssertionError, match="_planted_violation.py:1 \\(core\\)"):
            test_imports_follow_the_rule()
    finally:
        planted.unlink()


def test_the_cycle_test_sees_a_lazy_cycle():
    """The checker itself fails on a planted cycle whose one side is a lazy import, as
    ``files`` <-> ``video`` was (``video`` imported a helper of ``files`` inside a function)."""
    first = PACKAGE / "inference" / "_planted_cycle_a.py"
    second = PACKAGE / "inference" / "_planted_cycle_b.py"
    first.write_text("from colorize_tf.inference import _planted_cycle_b\n")
    second.write_text("def late():\n    from colorize_tf.inference import _planted_cycle_a\n")
    try:
        with pytest.raises(AssertionError, match="import cycle: .*_planted_cycle_[ab] -> "):
            test_no_import_cycle()
    finally:
        first.unlink()
        second.unlink()


@pytest.mark.parametrize(
    ("entry", "absent"),
    [
        ("colorize_tf.cli.colorize", ["colorize_tf.training", "colorize_tf.export"]),
        ("colorize_tf.cli.export", ["colorize_tf.training", "colorize_tf.evaluation"]),
        ("colorize_tf.app.server", ["colorize_tf.training", "colorize_tf.cli"]),
        ("colorize_tf.inference.loader", ["colorize_tf.training"]),
        ("colorize_tf", ["tensorflow", "keras"]),
    ],
)
@pytest.mark.integration
def test_importing_a_command_loads_only_its_rooms(entry, absent):
    """What actually gets imported, in a fresh interpreter: the colorize command does not load
    the training stack; the package alone imports neither TensorFlow nor Keras."""
    code = (
        f"import sys, importlib; importlib.import_module({entry!r}); "
        f"print(sorted({{a for m in sys.modules for a in {absent!r} "
        f"if m == a or m.startswith(a + '.')}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {entry} loaded {out.stdout.strip()}"
