"""The config schema: every key's type, default and allowed values, in one place.

Hydra composes `config.yaml` on top of `RunConfig` below, so OmegaConf rejects a value of
the wrong type or a key that does not exist as soon as the command line is read. What a
type cannot say — a range, a list of choices, a rule linking two keys — is stated here
too, in each field's metadata or in `CROSS_CHECKS`, and `check_config` enforces it before
a run starts: one line naming the key, its value and what is allowed.

The corpora are YAML options of the `data` group (conf/data/); optimizers and schedules
are the dataclasses below, selected with `optim=adamw` or `schedule=plateau`; experiments
(experiments/) override any of it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lstm_sweep.errors import ConfigError
from lstm_sweep.naming import run_name

# --------------------------------------------------------------------------- allowed values


def one_of(*choices: str, default: str):
    return field(default=default, metadata={"choices": choices})


def at_least(low: float, default, strict: bool = False):
    """A number >= low (> low if strict); None passes where the type is Optional."""
    return field(default=default, metadata={"low": low, "strict": strict})


def within(low: float, high: float, default, low_open: bool = False, high_open: bool = False):
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open,
                                            "high_open": high_open})


def _fault(value, meta: dict) -> str | None:
    """What is wrong with `value` under a field's metadata, or None."""
    if value is None:
        return None
    if "choices" in meta:
        return None if value in meta["choices"] else f"is not one of {', '.join(meta['choices'])}"
    if "high" in meta:
        low, high = meta["low"], meta["high"]
        inside = ((value > low if meta["low_open"] else value >= low)
                  and (value < high if meta["high_open"] else value <= high))
        return None if inside else (f"must be in {'(' if meta['low_open'] else '['}{low:g}, "
                                    f"{high:g}{')' if meta['high_open'] else ']'}")
    if "low" in meta:
        bound = f"{'>' if meta['strict'] else '>='} {meta['low']:g}"
        if isinstance(value, int):
            ok = value > meta["low"] if meta["strict"] else value >= meta["low"]
            return None if ok else f"must be an integer {bound}"
        ok = math.isfinite(value) and (value > meta["low"] if meta["strict"] else value >= meta["low"])
        return None if ok else f"must be a finite number {bound}"
    return None


# --------------------------------------------------------------------------- data

SPECIAL_TOKENS = ("<pad>", "<sos>", "<eos>")  # every vocabulary's first tokens (data/vocab.py)


@dataclass
class GeneratorConfig:
    """The built-in corpus's source (data/synthetic.py); the run's `seed` does not change it."""
    seed: int = 1234
    vocab_size: int = at_least(1, 1000)
    zipf_exponent: float = at_least(0, 1.1, strict=True)
    successors: int = at_least(1, 4)                     # sparse candidates per context
    first_order_weight: float = within(0, 1, 0.5)
    second_order_weight: float = within(0, 1, 0.25)
    eos_prob: float = within(0, 1, 0.06, low_open=True, high_open=True)
    train_tokens: int = at_least(1, 50_000)
    valid_tokens: int = at_least(1, 5_000)
    test_tokens: int = at_least(1, 5_000)


@dataclass
class DownloadConfig:
    """A public corpus fetched once into data.cache_dir (data/download.py)."""
    url: str = MISSING
    files: Dict[str, str] = MISSING                      # file name → md5
    retries: int = at_least(1, 4)
    timeout: float = at_least(0, 30.0, strict=True)


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: Optional[str] = None                           # corpus folder or file
    protocol: str = one_of("window", "stream", default="window")
    n_step: int = at_least(1, 5)                         # window length (window protocol)
    bptt: int = at_least(1, 35)                          # steps per batch (stream protocol)
    tokenize: str = one_of("word", "char", default="word")
    split_fractions: List[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])
    batch_size: int = at_least(1, 128)
    eval_batch_size: Optional[int] = at_least(1, 1024)  # null: batch_size; changes only speed
    shuffle: bool = True                                 # reshuffle training windows per epoch
    drop_last: bool = True                               # training only; evaluation sees every example
    unk_token: str = "<unk>"                             # what unseen valid/test words become
    cache_dir: str = "~/.cache/lstm_sweep"               # generated and downloaded corpora
    download: Optional[DownloadConfig] = None            # fetch the corpus when root is not set
    generator: Optional[GeneratorConfig] = None          # set: the corpus is generated (built-in)


# --------------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    # one, two: the compared LSTM cells; gru, rnn: hand-written too; torch: nn.LSTM, a baseline only
    cell: str = one_of("one", "two", "gru", "rnn", "torch", default="one")
    impl: str = one_of("fast", "reference", default="fast")  # whole-sequence kernels or step-wise cells
    num_layers: int = at_least(1, 1)
    embedding_size: int = at_least(1, 64)
    hidden_size: int = at_least(1, 64)
    dropout: float = within(0, 1, 0.0, high_open=True)   # between layers and before the decoder
    embedding_dropout: float = within(0, 1, 0.0, high_open=True)
    # linear: nn.Linear per gate (fan-in); uniform: U(±1/√H); normal: N(0, 0.01²)
    init: str = one_of("linear", "uniform", "normal", default="linear")
    init_range: Optional[float] = at_least(0, None, strict=True)  # every parameter ~ U(±r)
    tie_weights: bool = False                            # decoder weight = embedding weight
    decoder_bias: bool = True
    decoder_bias_init: Optional[float] = None            # null: nn.Linear's; a number: that constant


# --------------------------------------------------------------------------- optimizers


# The whole update in one pass over the parameters (torch's fused kernels, CPU and GPU),
# not foreach's several: 1.3× the report2021 step. false: torch's default (foreach). A class
# without a fused implementation (optim._target_=torch.optim.NAdam) ignores it.
FUSED = True


@dataclass
class AdamConfig:
    # Any torch.optim class taking these arguments works too: optim._target_=torch.optim.NAdam
    _target_: str = "torch.optim.Adam"
    lr: float = at_least(0, 0.003, strict=True)          # suits the built-in corpus
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = at_least(0, 1e-8, strict=True)
    weight_decay: float = at_least(0, 0.0)
    fused: bool = FUSED


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = at_least(0, 0.01)


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    lr: float = at_least(0, 1.0, strict=True)
    momentum: float = at_least(0, 0.0)
    weight_decay: float = at_least(0, 0.0)
    fused: bool = FUSED


# --------------------------------------------------------------------------- schedules

SCHEDULES = ("none", "plateau", "exponential")


@dataclass
class NoSchedule:
    name: str = one_of("none", default="none")      # a constant learning rate


@dataclass
class PlateauSchedule:
    """lr × factor after every epoch whose val/ppl does not beat the best so far."""
    name: str = one_of("plateau", default="plateau")
    factor: float = within(0, 1, 0.25, low_open=True)   # ÷ 4: PyTorch's word_language_model


@dataclass
class ExponentialSchedule:
    """Epochs 1 … start_epoch at optim.lr, then lr × factor every epoch (Zaremba et al.)."""
    name: str = one_of("exponential", default="exponential")
    factor: float = within(0, 1, 0.5, low_open=True)
    start_epoch: int = at_least(0, 4)


# --------------------------------------------------------------------------- trainer


@dataclass
class TrainerConfig:
    max_epochs: int = at_least(1, 2)
    gradient_clip_val: Optional[float] = at_least(0, None, strict=True)  # clip the gradient norm
    gradient_clip_algorithm: str = one_of("norm", "value", default="norm")
    accelerator: str = "cpu"                             # cpu | gpu | auto (Lightning's)
    devices: Any = 1
    precision: str = "32-true"
    threads: Optional[int] = at_least(1, None)           # torch CPU threads (null: see run/train.py)
    deterministic: bool = True
    test_checkpoint: str = one_of("last", "best", default="last")  # best: lowest val/ppl
    early_stopping_patience: Optional[int] = at_least(0, None)     # epochs without a better val/ppl
    log_every_n_steps: int = at_least(1, 20)
    limit_train_batches: Any = None                      # a number of batches or a fraction
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    progress_bar: Optional[bool] = None                 # null: shown when stdout is a terminal
    resume: bool = True                                  # an unfinished run folder resumes from its checkpoint
    # checkpoints/resume.ckpt within an epoch: every N steps, or (null) every M minutes
    checkpoint_every_n_steps: Optional[int] = at_least(1, None)
    checkpoint_every_minutes: float = at_least(0, 10.0, strict=True)


# --------------------------------------------------------------------------- loggers
# TensorBoard always: lstm-aggregate reads its event files. The `logger` group adds others
# beside it (run/loggers.py); none changes what a run computes.


@dataclass
class MLflowConfig:
    tracking_uri: Optional[str] = None      # null: $MLFLOW_TRACKING_URI, or MLflow's default (sqlite:///mlflow.db here)
    experiment_name: Optional[str] = None   # null: the experiment (report2021), or "lstm-sweep"
    run_name: Optional[str] = None          # null: the run folder's name (cell=two,layers=1,seed=3)
    tags: Dict[str, str] = field(default_factory=dict)


@dataclass
class LoggerConfig:
    csv: bool = False                       # also <run>/csv/metrics.csv (Lightning's CSVLogger)
    mlflow: Optional[MLflowConfig] = None   # also an MLflow run (pip install "lstm-sweep[mlflow]")


LOGGERS = {"tensorboard": LoggerConfig, "csv": lambda: LoggerConfig(csv=True),
           "mlflow": lambda: LoggerConfig(mlflow=MLflowConfig()),
           "many": lambda: LoggerConfig(csv=True, mlflow=MLflowConfig())}


# --------------------------------------------------------------------------- the run


@dataclass
class RunConfig:
    seed: int = at_least(0, 0)                           # initialisation, data order, dropout
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: Any = MISSING                                 # an option of the optim group
    schedule: Any = MISSING                              # an option of the schedule group
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # an option of the logger group
    # Published results a sweep report compares with (see experiments/report2021.yaml).
    reference: Any = None
    # What the run returns to Hydra, so an optimizing sweeper (hydra/sweeper=optuna) minimises
    # it: a key of metrics.json. A failed run returns NaN, which such a sweeper marks failed.
    objective: str = one_of("best_val/ppl", "val/ppl", "test/ppl", "val/loss", "test/loss", "train/ppl",
                            default="best_val/ppl")


COURSE_GRID = {"model.cell": "one,two", "model.num_layers": "1,2", "seed": "range(10)"}


@dataclass
class GridSweeperConfig:
    """lstm-train -m's sweeper: Hydra's grid, with run folders named by the swept keys."""
    _target_: str = "hydra_plugins.lstm_sweep_grid.GridSweeper"
    max_batch_size: Optional[int] = None
    # The grid of `lstm-sweep` (and `lstm-train -m`): the course report's comparison.
    # Command-line values replace a key's list (model.cell=one fixes it); new keys add factors.
    params: Optional[Dict[str, str]] = field(default_factory=lambda: dict(COURSE_GRID))
    dry_run: bool = False    # list the runs it would start, resume and skip; start none (lstm-sweep --dry-run)
    task: bool = False       # one task of a submitted sweep (sweep/task.py): launch its one run, record nothing


@dataclass
class SlurmLauncherConfig:
    """hydra/launcher=slurm: submit the sweep to SLURM and return (sweep/slurm.py)."""
    _target_: str = "hydra_plugins.lstm_sweep_slurm.SlurmLauncher"
    partition: Optional[str] = None
    time_min: int = at_least(1, 60)                 # each job's limit; a longer run requeues itself
    cpus_per_task: int = at_least(1, 1)             # torch threads of each run
    mem_gb: Optional[float] = at_least(0, None, strict=True)
    gpus: int = at_least(0, 0)                      # per run; with trainer.accelerator=gpu
    max_requeues: int = at_least(0, 5)              # after the time limit; then the run stays unfinished
    signal_delay_s: int = at_least(1, 120)          # warning before the time limit: checkpoint, requeue
    array_parallelism: Optional[int] = at_least(1, None)  # at most this many runs at once
    report: bool = True                             # a report job once every run's job has ended
    report_out: Optional[str] = None                # its folder (default: lstm-aggregate's)
    additional_parameters: Dict[str, str] = field(default_factory=dict)  # other sbatch options: {qos: high}


def register() -> None:
    """The schema, optimizers, schedules and sweeper in Hydra's ConfigStore, and the resolvers
    config.yaml uses."""
    OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)  # unique folders
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("sweep_name", lambda experiment: experiment or "default", replace=True)
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for name, node in (("adam", AdamConfig), ("adamw", AdamWConfig), ("sgd", SGDConfig)):
        store.store(group="optim", name=name, node=node)
    for name, node in zip(SCHEDULES, (NoSchedule, PlateauSchedule, ExponentialSchedule)):
        store.store(group="schedule", name=name, node=node)
    for name, node in LOGGERS.items():
        store.store(group="logger", name=name, node=node())
    store.store(group="hydra/sweeper", name="grid", node=GridSweeperConfig)
    store.store(group="hydra/launcher", name="slurm", node=SlurmLauncherConfig)


# --------------------------------------------------------------------------- checks


def _check_fields(node: DictConfig, path: str) -> None:
    schema = OmegaConf.get_type(node)
    for f in fields(schema) if hasattr(schema, "__dataclass_fields__") else ():
        value = node.get(f.name)
        key = f"{path}{f.name}"
        if isinstance(value, DictConfig):
            _check_fields(value, f"{key}.")
        elif (fault := _fault(value, f.metadata)) is not None:
            raise ConfigError(f"{key}={value!r} {fault}")


def _split_fractions(cfg) -> str | None:
    fractions = list(cfg.data.split_fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        return f"data.split_fractions={fractions} must be three numbers > 0 that sum to 1"
    return None


def _corpus_source(cfg) -> str | None:
    d = cfg.data
    if d.generator is None and not d.root and d.download is None:
        return (f"data.root is required for data={d.name}: the folder holding train.txt, valid.txt "
                "and test.txt, or one text file")
    return None


def _unk_token(cfg) -> str | None:
    if cfg.data.unk_token in SPECIAL_TOKENS:
        return f"data.unk_token={cfg.data.unk_token!r} collides with a special token"
    return None


def _generator_weights(cfg) -> str | None:
    g = cfg.data.generator
    if g is not None and g.first_order_weight + g.second_order_weight > 1:
        return ("data.generator.first_order_weight and second_order_weight must sum to at most 1 "
                f"(got {g.first_order_weight} and {g.second_order_weight})")
    return None


def _tied_sizes(cfg) -> str | None:
    m = cfg.model
    if m.tie_weights and m.embedding_size != m.hidden_size:
        return (f"model.tie_weights=true needs model.embedding_size == model.hidden_size "
                f"(got {m.embedding_size} and {m.hidden_size})")
    return None


def _optimizer_class(cfg) -> str | None:
    import torch
    from hydra.utils import get_class

    target = cfg.optim.get("_target_")
    try:
        ok = issubclass(get_class(target), torch.optim.Optimizer)
    except Exception:  # not importable, or not a class
        ok = False
    return None if ok else f"optim._target_={target!r} is not a torch.optim optimizer class"


def _batch_limits(cfg) -> str | None:
    for split in ("train", "val", "test"):
        value = cfg.trainer[f"limit_{split}_batches"]
        ok = (value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
              or (isinstance(value, float) and 0.0 <= value <= 1.0))
        if not ok:
            return (f"trainer.limit_{split}_batches={value!r} must be null, a number of batches >= 0 "
                    "or a fraction in [0, 1]")
    return None


CROSS_CHECKS = (_split_fractions, _corpus_source, _unk_token, _generator_weights, _tied_sizes,
                _optimizer_class, _batch_limits)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value the schema does not allow."""
    _check_fields(cfg, "")
    for check in CROSS_CHECKS:
        if (fault := check(cfg)) is not None:
            raise ConfigError(fault)


# --------------------------------------------------------------------------- the command line

GROUPS = ("data", "optim", "schedule", "logger", "experiment")  # overrides that pick an option, not a value
OPTIONS = {"optim": {"adam": AdamConfig, "adamw": AdamWConfig, "sgd": SGDConfig},
           "schedule": dict(zip(SCHEDULES, (NoSchedule, PlateauSchedule, ExponentialSchedule)))}


def check_overrides(overrides: list[str]) -> None:
    """Raise ConfigError, in one line naming the override, for one that cannot be read or
    whose value has the wrong type or whose key does not exist — Hydra would refuse it too,
    in five lines. What this cannot place it leaves to Hydra: its own keys, `+key` additions,
    and an optimizer's or schedule's keys unless the command line picks that option (an
    experiment may pick another)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep
    from omegaconf.errors import ConfigKeyError, ValidationError

    parser, parsed = OverridesParser.create(), []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except Exception as err:  # Hydra's grammar: its text ends with a link to the grammar
            text = "; ".join(t for t in str(err).splitlines() if t and not t.startswith(("See http", "Error parsing")))
            raise ConfigError(f"{line}: {text}") from None
    picked = {o.key_or_group: o.value() for o in parsed if o.key_or_group in OPTIONS and not o.is_sweep_override()}
    schema = OmegaConf.structured(RunConfig(**{group: OPTIONS[group].get(picked.get(group), dict)()
                                               for group in OPTIONS}))
    for override in parsed:
        key = override.key_or_group
        group = key.split(".")[0]
        if (key.startswith("hydra") or key in GROUPS or override.is_add() or override.is_force_add()
                or override.is_delete() or (group in OPTIONS and group not in picked)):
            continue
        value = override.value()
        values = (value.list if isinstance(value, ChoiceSweep) else list(override.sweep_iterator())
                  if isinstance(value, RangeSweep) else [] if override.is_sweep_override() else [value])
        for one in values:
            try:
                OmegaConf.update(schema, key, one, merge=True)
            except ValidationError as err:
                raise ConfigError(f"{override.input_line}: {str(err).splitlines()[0]}") from None
            except (ConfigKeyError, AttributeError):  # ConfigAttributeError is an AttributeError
                raise ConfigError(f"{override.input_line}: there is no key {key} "
                                  f"(a new key is added with +{key}=…)") from None
            except Exception:  # beneath an optional node (data.generator) that a data option fills in
                break
