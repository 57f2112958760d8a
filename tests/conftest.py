"""Shared fixtures: configs composed exactly as lstm-train composes them, on tiny data."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# A small built-in corpus and a small model: a run takes a few seconds.
TINY_CORPUS = [
    "data.generator.vocab_size=200", "data.generator.train_tokens=3000",
    "data.generator.valid_tokens=600", "data.generator.test_tokens=600", "data.batch_size=32",
]
TINY_RUN = ["model.embedding_size=16", "model.hidden_size=16", "trainer.max_epochs=2",
            "trainer.progress_bar=false"]
TINY = TINY_CORPUS + TINY_RUN


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(cache_dir):
    """compose(overrides) → the run config lstm-train would see, on the tiny corpus."""

    def make(*overrides: str, tiny: bool = True):
        other_corpus = any(o.startswith(("data=", "+experiment=")) for o in overrides)
        base = [f"data.cache_dir={cache_dir}", *(TINY_RUN if tiny else [])]
        if tiny and not other_corpus:
            base += TINY_CORPUS
        with initialize_config_module("lstm_sweep.conf", version_base="1.3"):
            return compose("config", overrides=[*base, *overrides])

    return make


def write_corpus(root: Path, train: str, valid: str = "a b\n", test: str = "b a\n", names=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = names or {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (root / names[split]).write_text(text, encoding="utf-8")
    return root
