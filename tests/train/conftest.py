"""Shared pieces of the engine tests: the tiny tasks, a tiny config, and a runner."""

from __future__ import annotations

import pytest
from tiny_train_task import register, tiny_config

register()


@pytest.fixture
def config_factory():
    return tiny_config
