"""Shared fixtures: tiny models come from ``l3prune.testing``."""

from __future__ import annotations

import logging

import pytest

from l3prune.testing import tiny_encoder


@pytest.fixture
def make_encoder():
    return tiny_encoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never reach a hub; INFO logs from l3prune are visible to caplog."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    logging.getLogger("l3prune").setLevel(logging.INFO)
