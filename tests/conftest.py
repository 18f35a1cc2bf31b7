"""Shared test setup: quiet TensorFlow, the two tiers, the tiny trained generator.

The default tier (``python -m pytest -q``) runs everything not marked ``integration``. The
marked tier holds what starts other processes or takes minutes a test: trainings run as
commands, the notebook, the browser, the app's load test, fresh-process exports. It runs with
``-m integration`` (that tier alone) or ``--integration`` (both tiers). ``slow`` is the older
name of the same tier, and ``--runslow`` of ``--integration``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--integration",
        "--runslow",
        action="store_true",
        default=False,
        help="also run the tests marked integration (or slow); -m integration runs them alone",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Runs before ``-m`` selects: a ``slow`` test counts as ``integration``; without
    ``--integration`` or a ``-m`` of the caller's own, the marked tier is deselected."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
    if config.getoption("--integration") or config.getoption("markexpr"):
        return
    marked = [item for item in items if item.get_closest_marker("integration")]
    if marked:
        config.hook.pytest_deselected(items=marked)
        items[:] = [item for item in items if not item.get_closest_marker("integration")]


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """The session's tiny generator trained a few L1 steps (``test_serving``); modules that
    need another generator define their own ``generator`` fixture."""
    from helpers import trained_tiny_generator

    return trained_tiny_generator(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model_path(generator, tmp_path_factory) -> str:
    """``generator`` saved as a ``.keras`` file."""
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    generator.save(path)
    return str(path)
