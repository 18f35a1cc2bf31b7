"""Shared test setup: quiet TensorFlow, deterministic seeds, an opt-in marker for slow checks."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


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
