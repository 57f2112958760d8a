"""The loggers the `logger` group adds beside TensorBoard (whose event files lstm-aggregate
reads): Lightning's CSVLogger and MLFlowLogger, each continuing its record when a run resumes.

- csv: `<run>/csv/metrics.csv` (and `hparams.yaml`). A resumed run keeps the rows up to its
  checkpoint's step, as TensorBoard keeps the points (CSVLogger would delete the file).
- mlflow: one MLflow run per lstm-sweep run, named after its folder, its settings as flat
  params (`model.cell`), every scalar as a metric. `<run>/mlflow.json` records the MLflow
  run, so a resumed run goes on logging into the same one.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig

from lstm_sweep.errors import ConfigError, one_line
from lstm_sweep.files import write_json

log = logging.getLogger(__name__)

CSV_FOLDER = "csv"
MLFLOW_RECORD = "mlflow.json"


def extra_loggers(cfg: DictConfig, run_dir: Path, resumed_step: int | None) -> list:
    chosen = []
    if cfg.logger.csv:
        chosen.append(csv_logger(run_dir, resumed_step))
    if cfg.logger.mlflow is not None:
        chosen.append(mlflow_logger(cfg, run_dir))
    return chosen


def csv_logger(run_dir: Path, resumed_step: int | None):
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(run_dir), name=CSV_FOLDER, version="")
    metrics_file = Path(logger.log_dir) / "metrics.csv"
    kept = []
    if resumed_step is not None and metrics_file.is_file():
        with metrics_file.open(newline="") as f:
            kept = [row for row in csv.DictReader(f) if row.get("step") and int(row["step"]) <= resumed_step]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        writer = logger.experiment  # starts the file afresh
    writer.metrics.extend(kept)  # written back, before the resumed attempt's rows, at its first save
    return logger


def mlflow_logger(cfg: DictConfig, run_dir: Path):
    """Lightning's MLFlowLogger, on the run's MLflow run if it has one (a resumed run)."""
    from pytorch_lightning.loggers import MLFlowLogger

    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError('logger.mlflow needs MLflow: pip install "lstm-sweep[mlflow]"') from None

    class RunMLFlowLogger(MLFlowLogger):
        def log_hyperparams(self, params) -> None:
            """The settings as flat keys (`model.cell`), as in TensorBoard's HPARAMS, not
            Lightning's `config/model/cell`."""
            from lstm_sweep.run.summary import hparam_values

            params = dict(params)
            flat = hparam_values(dict(params.pop("config", {})))
            super().log_hyperparams({**flat, **params})

    settings = cfg.logger.mlflow
    record = run_dir / MLFLOW_RECORD
    previous = json.loads(record.read_text()) if record.is_file() else {}
    experiment = cfg_experiment_name(cfg)
    uri = settings.tracking_uri or previous.get("tracking_uri") or default_tracking_uri()
    try:
        logger = RunMLFlowLogger(
            experiment_name=settings.experiment_name or experiment,
            run_name=settings.run_name or run_dir.name,
            tracking_uri=uri,
            tags={"run_dir": str(run_dir.resolve()), **dict(settings.tags)},
            run_id=previous.get("run_id"),
        )
        logger.experiment  # noqa: B018 — makes (or finds) the MLflow run now, to record it before training
    except Exception as err:  # a store MLflow refuses or cannot reach: before any training
        raise ConfigError(f"logger.mlflow.tracking_uri={uri}: {one_line(err)}") from None
    write_json(
        record, {"tracking_uri": logger._tracking_uri, "experiment_id": logger.experiment_id, "run_id": logger.run_id}
    )
    log.info("MLflow run %s in experiment %s at %s", logger.run_id, logger.experiment_id, logger._tracking_uri)
    return logger


def cfg_experiment_name(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get("experiment") or "lstm-sweep"
    return "lstm-sweep"


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, or MLflow's own default store (sqlite:///mlflow.db in the working folder)."""
    import mlflow

    return mlflow.get_tracking_uri()
