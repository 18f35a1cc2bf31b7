"""Standing checks on the repository itself: CI runs the README's test command; the README stays
a short front door whose links (and the docs pages') all resolve; the code is lint-clean and
formatted."""

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


def test_ci_runs_both_tiers_and_the_readme_says_how():
    """The default tier on the newest and the floor versions, the integration tier on the newest;
    the README names the command that runs the marked tier."""
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    marked_tier = "python -m pytest -q -m integration"
    assert marked_tier in ci_lines, ".ci/run must run the integration tier"
    assert marked_tier in (ROOT / "README.md").read_text()
    assert ".venv-floor/bin/python -m pytest -q" in ci_lines
    assert "set -euo pipefail" in ci_lines, ".ci/run must stop, non-zero, on a failing tier"


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
    tensorflow no newer than the last tensorflow-tpu (2.20.0), and docs/dependencies.md's table
    says the same."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins, requires = _pins(ROOT / ".ci/floor.txt"), _install_requires()
    table = (ROOT / "docs/dependencies.md").read_text()
    for name in ("tensorflow", "keras"):
        requirement = Requirement(requires[name])
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert lower and Version(pins[name]) == Version(lower[0]), (requires[name], pins[name])
        assert Version(pins[name]) in requirement.specifier, (requires[name], pins[name])
        row = f"| `{requires[name]}` |"
        assert row in table, f"docs/dependencies.md's table needs the row {row}"
    assert Version(pins["tensorflow"]) <= Version("2.20.0"), "tensorflow-tpu stops at 2.20.0"
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    floor_install = [line for line in ci_lines if "pip install -c .ci/floor.txt" in line]
    assert floor_install, ".ci/run must install a second environment with -c .ci/floor.txt"


README_MAX_LINES = 160  # a front door: the rest lives in docs/, one page per subject
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_readme_is_a_short_front_door_that_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES, len(readme.splitlines())
    linked = {(ROOT / target).resolve() for target, _ in _links(readme)}
    assert DOC_PAGES and not [p.name for p in DOC_PAGES if p.resolve() not in linked]


def _without_code(markdown: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", markdown)


def _links(markdown: str) -> list[tuple[str, str]]:
    """(path, anchor) of every relative link and image: ``[text](target)``, ``src=``/``href=``."""
    text = _without_code(markdown)
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    targets += re.findall(r"\b(?:src|href)=\"([^\"]+)\"", text)
    relative = [t for t in targets if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", t)]
    return [tuple(t.partition("#")[::2]) for t in relative]


def _github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, inline markup and punctuation dropped (letters,
    digits, ``_``, ``-`` and spaces kept), spaces turned into ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    slugs, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _without_code(markdown), re.M):
        slug = _github_slug(heading)
        count = seen.get(slug, 0)
        slugs.add(slug if count == 0 else f"{slug}-{count}")  # repeats get -1, -2, ...
        seen[slug] = count + 1
    return slugs


def test_github_slugs_of_this_repository_s_headings():
    assert _github_slug("Results (measured here, CPU only)") == "results-measured-here-cpu-only"
    assert _github_slug("Training on a TPU (and other accelerators)") == (
        "training-on-a-tpu-and-other-accelerators"
    )
    assert _github_slug("Export: SavedModel and TFLite") == "export-savedmodel-and-tflite"
    assert (
        _github_slug("The `colorize` command, [with](x.md) a_b") == "the-colorize-command-with-a_b"
    )
    assert _anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}
    assert _links('[a](x.md#y) `[b](no.md)` <img src="p.jpg"> [c](https://e.org)') == [
        ("x.md", "y"),
        ("p.jpg", ""),
    ]


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOC_PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    """Each relative link or image in README.md and docs/*.md names a file of the repository,
    and each ``#anchor`` a heading of its target (GitHub's slugs)."""
    links = _links(page.read_text())
    assert links, f"{page.name}: no links found (the parser is broken, or the page is an island)"
    broken = []
    for path, anchor in links:
        target = (page.parent / path).resolve() if path else page
        name = path + (f"#{anchor}" if anchor else "")
        if (ROOT not in target.parents and target != ROOT) or not target.exists():
            broken.append(f"{name}: no such file in the repository")
        elif anchor and anchor not in _anchors(target.read_text()):
            broken.append(f"{name}: no such heading in {target.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


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
