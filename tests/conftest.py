"""Fixtures: configs composed exactly as lstm-train composes them, on tiny data."""

from pathlib import Path

import pytest
from helpers import TINY_CORPUS, TINY_RUN, compose_run


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(cache_dir):
    """compose(overrides) → the run config lstm-train would see, on the tiny corpus."""

    def make(*overrides: str, tiny: bool = True):
        other_corpus = any(o.startswith(("data=", "experiment=")) for o in overrides)
        base = [f"data.cache_dir={cache_dir}", *(TINY_RUN if tiny else [])]
        if tiny and not other_corpus:
            base += TINY_CORPUS
        return compose_run(*base, *overrides)

    return make
