"""The `logger` group beside TensorBoard — CSV, and MLflow against a real tracking server this
file starts on 127.0.0.1 — and an Optuna search that minimises the runs' objective.

MLflow and Optuna are optional extras: their tests skip where they are not installed (helpers.extra)."""

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import TINY, compose_run, extra, logged, run_until_killed
from lstm_sweep.run.train import record_run

BIN = Path(sys.executable).parent
TIMINGS = ("train/tokens_per_sec", "wall_time_sec")


def csv_rows(run_dir: Path) -> list[dict]:
    """metrics.csv's rows, each without its empty cells and timings."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as f:
        return [{k: v for k, v in row.items() if v != "" and k not in TIMINGS} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_the_csv_log_holds_what_tensorboard_holds_and_a_killed_run_resumes_it_whole(tmp_path, cache_dir):
    overrides = [
        *TINY,
        f"data.cache_dir={cache_dir}",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=3",
        "trainer.checkpoint_every_n_steps=7",
        "logger=csv",
    ]
    record_run(compose_run(*overrides), tmp_path / "whole")
    rows = csv_rows(tmp_path / "whole")
    for tag in ("val/ppl", "train/ppl", "train/loss", "test/ppl", "train/lr"):
        in_csv = [float(row[tag]) for row in rows if tag in row]
        assert in_csv == pytest.approx(logged(tmp_path / "whole", tag), rel=1e-6), tag
    steps = json.loads((tmp_path / "whole" / "metrics.json").read_text())["steps"]
    run_until_killed(tmp_path / "resumed", steps // 3 + 10, overrides)  # mid-epoch 1, 3 steps past a checkpoint
    record_run(compose_run(*overrides), tmp_path / "resumed")
    assert csv_rows(tmp_path / "resumed") == rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 with a SQLite store, stopped (its process group, by the
    PID it was started with) when the test ends."""
    extra("mlflow")
    port, log = free_port(), (tmp_path / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the MLflow server did not answer within 120 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.extras
def test_an_mlflow_run_records_the_settings_and_every_scalar_and_a_killed_run_goes_on_in_it(
    tmp_path, cache_dir, mlflow_server
):
    from mlflow.tracking import MlflowClient

    overrides = [
        *TINY,
        f"data.cache_dir={cache_dir}",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=3",
        "trainer.checkpoint_every_n_steps=7",
        "logger=mlflow",
        f"logger.mlflow.tracking_uri={mlflow_server}",
        "model.cell=two",
    ]
    run_dir = tmp_path / "mlflow-run"
    proc = subprocess.run(
        [str(BIN / "lstm-train"), *overrides, f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    record = json.loads((run_dir / "mlflow.json").read_text())
    client = MlflowClient(mlflow_server)
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "mlflow-run"
    assert client.get_experiment(run.info.experiment_id).name == "lstm-sweep"
    assert run.data.params["model.cell"] == "two" and run.data.params["trainer.max_epochs"] == "3"
    assert run.data.tags["run_dir"] == str(run_dir.resolve())
    for tag in ("val/ppl", "train/ppl", "test/ppl", "test/loss", "train/loss"):
        history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, tag), key=lambda m: m.step)]
        assert history == pytest.approx(logged(run_dir, tag), rel=1e-6), tag
    assert run.data.metrics["test/ppl"] == pytest.approx(metrics["test/ppl"], rel=1e-6)
    assert run.data.metrics["val/best_ppl"] == pytest.approx(metrics["best_val/ppl"], rel=1e-6)

    killed = tmp_path / "killed"
    run_until_killed(killed, metrics["steps"] // 3 + 10, overrides)
    first = json.loads((killed / "mlflow.json").read_text())["run_id"]
    record_run(compose_run(*overrides), killed)
    assert json.loads((killed / "mlflow.json").read_text())["run_id"] == first
    resumed = client.get_run(first)
    assert resumed.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 2  # the killed run went on in its own
    val = client.get_metric_history(first, "val/ppl")
    assert sorted(m.step for m in val) == sorted({m.step for m in val}) and len(val) == 3
    assert resumed.data.metrics["test/ppl"] == pytest.approx(
        json.loads((killed / "metrics.json").read_text())["test/ppl"], rel=1e-6
    )


@pytest.mark.slow
@pytest.mark.extras
def test_optuna_searches_with_the_objective_each_run_returns(tmp_path, cache_dir):
    extra("optuna")
    sweep_dir = tmp_path / "search"
    proc = subprocess.run(
        [
            str(BIN / "lstm-train"),
            "-m",
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.sampler.seed=1",
            "optim.lr=interval(0.001,0.03)",
            *TINY,
            f"data.cache_dir={cache_dir}",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    lrs = {
        yaml.safe_load((p.parent / ".hydra" / "config.yaml").read_text())["optim"]["lr"]
        for p in sweep_dir.glob("*/metrics.json")
    }
    assert len(runs) == 3 and len(lrs) == 3 and all(0.001 <= lr <= 0.03 for lr in lrs)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == min(run["best_val/ppl"] for run in runs)
    assert math.isfinite(results["best_value"]) and set(results["best_params"]) == {"optim.lr"}


def test_mlflow_without_the_extra_is_one_line_naming_the_install(make_cfg, tmp_path, monkeypatch):
    from lstm_sweep.errors import ConfigError
    from lstm_sweep.run.train import train

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: importing it fails
    with pytest.raises(ConfigError, match=r'logger.mlflow needs MLflow: pip install "lstm-sweep\[mlflow\]"'):
        train(make_cfg("logger=mlflow"), tmp_path / "run")


@pytest.mark.slow
@pytest.mark.extras
def test_a_store_mlflow_refuses_fails_the_run_in_one_line_before_it_trains(tmp_path, cache_dir):
    extra("mlflow")
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            str(BIN / "lstm-train"),
            *TINY,
            f"data.cache_dir={cache_dir}",
            "logger=mlflow",
            f"logger.mlflow.tracking_uri=http://127.0.0.1:{free_port()}",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"},
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "logger.mlflow.tracking_uri=http://127.0.0.1:" in errors[0]
    assert "Traceback" not in proc.stderr and not (run_dir / "checkpoints").exists()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
