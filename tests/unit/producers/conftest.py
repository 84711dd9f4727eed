"""Fixtures for the producer tests: the shared VirtualBets sample file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_file


@pytest.fixture(scope="session")
def virtualbets_csv() -> Path:
    return shared_file("virtualbets_sample_1000.csv")
