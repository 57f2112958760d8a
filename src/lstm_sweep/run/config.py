"""A run's whole config: `RunConfig`, made of the data and model rooms' configs and the run's
own — optimizers, schedules, the trainer, the loggers — and `check_config`, which every run
passes before it starts.

`register()` puts these dataclasses into Hydra's ConfigStore (as the schema under
conf/config.yaml, and as the options of the optim, schedule and logger groups) together
with the resolvers config.yaml uses. Hydra's plugin scan calls it (hydra_plugins/
lstm_sweep_configs), as Hydra's own plugins register their configs, so every way of
composing — lstm-train, `hydra.compose`, a joblib worker — finds them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lstm_sweep.data import config as data_config
from lstm_sweep.data.config import DataConfig
from lstm_sweep.fields import Check, at_least, check_fields, one_of, run_checks, setting, within
from lstm_sweep.model import config as model_config
from lstm_sweep.model.config import ModelConfig
from lstm_sweep.naming import run_name

# --------------------------------------------------------------------------- optimizers

# The whole update in one pass over the parameters (torch's fused kernels, CPU and GPU),
# not foreach's several: 1.3× the report2021 step. false: torch's default (foreach). A class
# without a fused implementation (optim._target_=torch.optim.NAdam) ignores it.
FUSED_DOC = "torch's fused step where the class has one (one pass over the parameters); false: foreach"


@dataclass
class AdamConfig:
    _target_: str = setting(
        "torch.optim.Adam", "any torch.optim class taking these arguments: optim._target_=torch.optim.NAdam"
    )
    lr: float = at_least(0, 0.003, strict=True, doc="learning rate (0.003 suits the built-in corpus)")
    betas: list[float] = setting(doc="Adam's β₁, β₂", factory=lambda: [0.9, 0.999])
    eps: float = at_least(0, 1e-8, strict=True, doc="Adam's ε")
    weight_decay: float = at_least(0, 0.0, doc="L2 penalty (AdamW: decoupled)")
    fused: bool = setting(True, FUSED_DOC)


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = setting("torch.optim.AdamW", "as for adam")
    weight_decay: float = at_least(0, 0.01, doc="decoupled weight decay")


@dataclass
class SGDConfig:
    _target_: str = setting("torch.optim.SGD", "any torch.optim class taking these arguments")
    lr: float = at_least(0, 1.0, strict=True, doc="learning rate")
    momentum: float = at_least(0, 0.0, doc="momentum")
    weight_decay: float = at_least(0, 0.0, doc="L2 penalty")
    fused: bool = setting(True, FUSED_DOC)


OPTIMIZERS = {"adam": AdamConfig, "adamw": AdamWConfig, "sgd": SGDConfig}

# --------------------------------------------------------------------------- schedules


@dataclass
class NoSchedule:
    name: str = one_of("none", default="none", doc="a constant learning rate")


@dataclass
class PlateauSchedule:
    """lr × factor after every epoch whose val/ppl does not beat the best so far."""

    name: str = one_of("plateau", default="plateau", doc="lr × factor when val/ppl fails to beat its best")
    factor: float = within(0, 1, 0.25, low_open=True, doc="÷ 4: PyTorch's word_language_model")


@dataclass
class ExponentialSchedule:
    """Epochs 1 … start_epoch at optim.lr, then lr × factor every epoch (Zaremba et al.)."""

    name: str = one_of("exponential", default="exponential", doc="lr × factor every epoch after start_epoch")
    factor: float = within(0, 1, 0.5, low_open=True, doc="per epoch")
    start_epoch: int = at_least(0, 4, doc="epochs at the initial lr")


SCHEDULES = {"none": NoSchedule, "plateau": PlateauSchedule, "exponential": ExponentialSchedule}

# --------------------------------------------------------------------------- trainer


def lightning(made: Any) -> Any:
    """A trainer key (`made` by one of fields.py's helpers) that Lightning's Trainer takes as
    it is, under the same name."""
    return field(
        default=made.default, default_factory=made.default_factory, metadata={**made.metadata, "lightning": True}
    )


@dataclass
class TrainerConfig:
    max_epochs: int = lightning(at_least(1, 2, doc="epochs"))
    gradient_clip_val: Optional[float] = lightning(
        at_least(0, None, strict=True, doc="clip the gradient's norm (or value) at this")
    )
    gradient_clip_algorithm: str = lightning(one_of("norm", "value", default="norm", doc="what is clipped"))
    accelerator: str = lightning(setting("cpu", "where it trains: cpu, gpu or auto"))
    devices: Any = lightning(setting(1, "how many devices"))
    precision: str = lightning(setting("32-true", "numeric precision: 32-true, bf16-mixed …"))
    threads: Optional[int] = at_least(
        1, None, doc="torch CPU threads (null: torch's default; in a SLURM job its CPUs; under joblib cores ÷ jobs)"
    )
    deterministic: bool = lightning(setting(True, "deterministic kernels"))
    test_checkpoint: str = one_of("last", "best", default="last", doc="test the last epoch, or the lowest val/ppl")
    early_stopping_patience: Optional[int] = at_least(
        0, None, doc="stop after this many epochs without a better val/ppl"
    )
    log_every_n_steps: int = lightning(at_least(1, 20, doc="how often the step loss is logged"))
    limit_train_batches: Any = lightning(
        setting(None, "a number of batches or a fraction of each epoch (quick checks)")
    )
    limit_val_batches: Any = lightning(setting(None, "as limit_train_batches"))
    limit_test_batches: Any = lightning(setting(None, "as limit_train_batches"))
    progress_bar: Optional[bool] = setting(None, "null: shown when stdout is a terminal")
    resume: bool = setting(True, "an unfinished run folder resumes from its checkpoint; false: start over")
    checkpoint_every_n_steps: Optional[int] = at_least(
        1, None, doc="write checkpoints/resume.ckpt every N steps within an epoch (null: every M minutes)"
    )
    checkpoint_every_minutes: float = at_least(0, 10.0, strict=True, doc="the cadence when it is not in steps")


def lightning_arguments(trainer: Any) -> dict:
    """The trainer keys Lightning's Trainer takes as they are, by name."""
    return {f.name: trainer[f.name] for f in fields(TrainerConfig) if f.metadata.get("lightning")}


# --------------------------------------------------------------------------- loggers
# TensorBoard always: lstm-aggregate reads its event files. The `logger` group adds others
# beside it (loggers.py); none changes what a run computes.


@dataclass
class MLflowConfig:
    tracking_uri: Optional[str] = setting(
        None, "null: $MLFLOW_TRACKING_URI, or MLflow's default (sqlite:///mlflow.db here)"
    )
    experiment_name: Optional[str] = setting(None, 'null: the experiment (report2021), or "lstm-sweep"')
    run_name: Optional[str] = setting(None, "null: the run folder's name (cell=two,layers=1,seed=3)")
    tags: dict[str, str] = setting(doc="tags of every MLflow run", factory=dict)


@dataclass
class LoggerConfig:
    csv: bool = setting(False, "also <run>/csv/metrics.csv (Lightning's CSVLogger)")
    mlflow: Optional[MLflowConfig] = setting(None, 'also an MLflow run (pip install "lstm-sweep[mlflow]")')


LOGGERS = {
    "tensorboard": LoggerConfig,
    "csv": lambda: LoggerConfig(csv=True),
    "mlflow": lambda: LoggerConfig(mlflow=MLflowConfig()),
    "many": lambda: LoggerConfig(csv=True, mlflow=MLflowConfig()),
}

# --------------------------------------------------------------------------- the run

OBJECTIVES = ("best_val/ppl", "val/ppl", "test/ppl", "val/loss", "test/loss", "train/ppl")


@dataclass
class RunConfig:
    seed: int = within(0, 2**32 - 1, 0, doc="fixes initialisation, data order and dropout (numpy's range)")
    trial: Optional[int] = setting(
        None, "the random-search trial this run is (set by the sweeper from hydra.sweeper.search); null: none"
    )
    data: DataConfig = setting(doc="the corpus and its batches (the data group picks one)", factory=DataConfig)
    model: ModelConfig = setting(doc="the cell and the language model", factory=ModelConfig)
    optim: Any = setting(MISSING, "an option of the optim group: adam, adamw or sgd")
    schedule: Any = setting(MISSING, "an option of the schedule group: none, plateau or exponential")
    trainer: TrainerConfig = setting(doc="the training loop", factory=TrainerConfig)
    logger: LoggerConfig = setting(doc="an option of the logger group", factory=LoggerConfig)
    reference: Any = setting(None, "published results a sweep's report compares with (experiments/report2021.yaml)")
    objective: str = one_of(
        *OBJECTIVES,
        default="best_val/ppl",
        doc="the metrics.json key a run returns to Hydra for an optimizing sweeper (NaN: it did not finish)",
    )


def _optimizer_class(cfg: Any) -> str | None:
    import torch
    from hydra.utils import get_class

    target = cfg.optim.get("_target_")
    try:
        ok = issubclass(get_class(target), torch.optim.Optimizer)
    except Exception:  # not importable, or not a class
        ok = False
    return None if ok else f"optim._target_={target!r} is not a torch.optim optimizer class"


def _batch_limits(cfg: Any) -> str | None:
    for split in ("train", "val", "test"):
        value = cfg.trainer[f"limit_{split}_batches"]
        # none at all would leave the run without its loss, its val/ppl or its test numbers
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if not (value is None or whole or (isinstance(value, float) and 0.0 < value <= 1.0)):
            return (
                f"trainer.limit_{split}_batches={value!r} must be null, a number of batches >= 1 "
                "or a fraction in (0, 1]"
            )
    return None


CHECKS: tuple[Check, ...] = (*data_config.CHECKS, *model_config.CHECKS, _optimizer_class, _batch_limits)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value the run's config does not allow."""
    check_fields(cfg)
    run_checks(cfg, CHECKS)


def register() -> None:
    """The run's schema and the optim, schedule and logger options in Hydra's ConfigStore,
    and the resolvers config.yaml uses."""
    OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)  # unique folders
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("sweep_name", lambda experiment: experiment or "default", replace=True)
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for group, options in (("optim", OPTIMIZERS), ("schedule", SCHEDULES)):
        for name, node in options.items():
            store.store(group=group, name=name, node=node)
    for name, make in LOGGERS.items():
        store.store(group="logger", name=name, node=make())


def compose(*overrides: str, hydra: bool = False) -> DictConfig:
    """The run config lstm-train composes from these overrides (`model.cell=two`,
    `experiment=report2021`), with Hydra's own node too if `hydra`; nothing is run."""
    from hydra import compose as hydra_compose
    from hydra import initialize

    with initialize(version_base="1.3", config_path=None):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra)
