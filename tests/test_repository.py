"""Standing checks on the repository itself: CI runs the README's test command; the code is
lint-clean and formatted."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    block = re.search(
        r"<!-- setup -->\s*```(?:bash|sh)?\n(.*?)```", (ROOT / "README.md").read_text(), re.S
    )
    assert block, "README.md must have a ```bash block right after <!-- setup -->"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    install_and_run, tests = _readme_commands()
    assert "pip install" in install_and_run and "python -m colorize_tf" in install_and_run
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert tests in ci_lines, tests


def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


def _install_requires() -> dict[str, str]:
    cfg = (ROOT / "setup.cfg").read_text()
    block = re.search(r"^install_requires =\n((?:[ \t]+\S.*\n)+)", cfg, re.M)
    assert block, "setup.cfg must list install_requires"
    reqs = [line.strip() for line in block.group(1).splitlines()]
    return {re.match(r"[A-Za-z0-9_.-]+", req).group(0): req for req in reqs}


def test_ci_floor_pins_the_lower_bounds_that_setup_cfg_and_readme_state():
    """.ci/floor.txt is the oldest tensorflow/keras setup.cfg allows, within setup.cfg's range,
    tensorflow no newer than the last tensorflow-tpu (2.20.0), and README's table says the same."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins, requires = _pins(ROOT / ".ci/floor.txt"), _install_requires()
    readme = (ROOT / "README.md").read_text()
    for name in ("tensorflow", "keras"):
        requirement = Requirement(requires[name])
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert lower and Version(pins[name]) == Version(lower[0]), (requires[name], pins[name])
        assert Version(pins[name]) in requirement.specifier, (requires[name], pins[name])
        assert f"| `{requires[name]}` |" in readme, f"README's Dependencies row: {requires[name]}"
    assert Version(pins["tensorflow"]) <= Version("2.20.0"), "tensorflow-tpu stops at 2.20.0"
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    floor_install = [line for line in ci_lines if "pip install -c .ci/floor.txt" in line]
    assert floor_install, ".ci/run must install a second environment with -c .ci/floor.txt"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff comes with the [test] extra")
def test_ruff_clean():
    """``ruff check`` (E501 included: lines of at most 100) and ``ruff format --check``."""
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, " ".join(command) + "\n" + result.stdout + result.stderr


def test_ruff_checks_line_length():
    """The lint settings the code is held to: 100 columns, and E501 not ignored."""
    import tomllib

    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["line-length"] == 100
    assert "E501" not in ruff["lint"].get("ignore", [])
