"""The Python API for notebooks: a sweep's runs, curves and damaged runs as DataFrames in one
call, read as lstm-aggregate reads them; a run composed, trained and loaded from Python."""

import json
import math
import shutil

import pytest
import torch

from helpers import TINY, logged
from lstm_sweep import api
from lstm_sweep.errors import ConfigError, RunFinished


def test_a_sweep_loads_as_dataframes_in_one_call(tiny_sweep):
    sweep = api.load_sweep(tiny_sweep)
    assert sweep.factors == ["model.cell"]
    runs = sweep.runs.set_index("run")
    assert list(runs.index) == ["cell=one,seed=0", "cell=one,seed=1", "cell=two,seed=0", "cell=two,seed=1"]
    assert set(runs["status"]) == {"finished"} and sweep.damaged.empty and len(sweep.finished) == 4
    assert runs["model.cell"].tolist() == ["one", "one", "two", "two"] and runs["seed"].tolist() == [0, 1, 0, 1]
    for name, run in runs.iterrows():
        metrics = json.loads((tiny_sweep / name / "metrics.json").read_text())
        assert run["test/ppl"] == pytest.approx(metrics["test/ppl"], rel=1e-6)  # float32 in the event file
    assert len(sweep.epochs) == 8 and sweep.epochs.groupby("run")["epoch"].apply(list).tolist() == [[0, 1]] * 4
    assert sweep.info["name"] == "tiny" and sweep.info["swept"] == ["model.cell", "seed"]


def test_every_logged_point_of_a_tag_comes_with_its_run_and_factors(tiny_sweep):
    sweep = api.load_sweep(tiny_sweep)
    losses = sweep.scalars("train/loss")
    assert list(losses.columns) == ["run", "model.cell", "seed", "step", "value", "wall_time"]
    for name, points in losses.groupby("run"):
        assert points["value"].tolist() == pytest.approx(logged(tiny_sweep / name, "train/loss"))
    assert set(losses["model.cell"]) == {"one", "two"}
    assert sweep.scalars("no/such/tag").empty


def test_a_damaged_run_is_listed_with_its_reason_and_left_out(tiny_sweep, tmp_path):
    folder = shutil.copytree(tiny_sweep, tmp_path / "sweep")
    (folder / "cell=two,seed=1" / "metrics.json").write_text('{"test/ppl": ')
    sweep = api.load_sweep(folder)
    assert sweep.damaged["run"].tolist() == ["cell=two,seed=1"]
    assert sweep.damaged["error"].iloc[0].startswith("metrics.json cannot be read: JSONDecodeError")
    assert len(sweep.finished) == 3


def test_a_folder_without_runs_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=f"no runs in {tmp_path}"):
        api.load_sweep(tmp_path)


def test_a_run_composed_trained_and_loaded_from_python(tmp_path, cache_dir):
    cfg = api.compose(*TINY, f"data.cache_dir={cache_dir}", "model.cell=two", "trainer.max_epochs=1")
    assert cfg.model.cell == "two"
    metrics = api.train(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "finished"
    assert math.isfinite(metrics["test/ppl"]) and metrics["epochs"] == 1
    with pytest.raises(RunFinished):  # a finished run is never written over
        api.train(cfg, tmp_path / "run")
    model, vocab, config = api.load_model(tmp_path / "run", checkpoint="best")
    assert not model.training and config["model"]["cell"] == "two" and len(vocab) == model.decoder.out_features
    with torch.no_grad():
        logits, _ = model(torch.zeros(1, 5, dtype=torch.long), last_only=True)
    assert logits.shape == (1, len(vocab))
