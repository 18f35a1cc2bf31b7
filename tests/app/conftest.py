"""Fixtures of the web app's tests."""

from pathlib import Path

import pytest
from app_server import tiny_model_file


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory)
