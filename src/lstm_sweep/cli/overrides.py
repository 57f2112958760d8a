"""The command line's overrides, read before Hydra starts: Hydra refuses a value of the wrong
type or an unknown key in a traceback of some five lines; here it is one line naming it."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from lstm_sweep.errors import ConfigError
from lstm_sweep.run.config import OPTIMIZERS, SCHEDULES, RunConfig

GROUPS = ("data", "optim", "schedule", "logger", "experiment")  # overrides that pick an option, not a value
OPTIONS = {"optim": OPTIMIZERS, "schedule": SCHEDULES}  # groups whose options' keys are checked


def check_overrides(overrides: list[str]) -> None:
    """Raise ConfigError, in one line naming the override, for one that cannot be read or
    whose value has the wrong type or whose key does not exist. What this cannot place it
    leaves to Hydra: its own keys, `+key` additions, and an optimizer's or schedule's keys
    unless the command line picks that option (an experiment may pick another)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep
    from omegaconf.errors import ConfigKeyError, ValidationError

    parser, parsed = OverridesParser.create(), []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except Exception as err:  # Hydra's grammar: its text ends with a link to the grammar
            lines = str(err).splitlines()
            text = "; ".join(t for t in lines if t and not t.startswith(("See http", "Error parsing")))
            raise ConfigError(f"{line}: {text}") from None
    picked = {o.key_or_group: str(o.value()) for o in parsed if o.key_or_group in OPTIONS and not o.is_sweep_override()}
    options = {group: OPTIONS[group].get(picked.get(group, ""), dict)() for group in OPTIONS}
    schema = OmegaConf.structured(RunConfig(**options))
    for override in parsed:
        key = override.key_or_group
        group = key.split(".")[0]
        if key == "experiment":
            refuse_leaving_folder(override)
        if (
            key.startswith("hydra")
            or key in GROUPS
            or override.is_add()
            or override.is_force_add()
            or override.is_delete()
            or (group in OPTIONS and group not in picked)
        ):
            continue
        value = override.value()
        values: list[Any]
        if isinstance(value, ChoiceSweep):
            values = value.list
        elif isinstance(value, RangeSweep):
            values = list(override.sweep_iterator())
        else:
            values = [] if override.is_sweep_override() else [value]
        for one in values:
            try:
                OmegaConf.update(schema, key, one, merge=True)
            except ValidationError as err:
                raise ConfigError(f"{override.input_line}: {str(err).splitlines()[0]}") from None
            except (ConfigKeyError, AttributeError):  # ConfigAttributeError is an AttributeError
                raise ConfigError(
                    f"{override.input_line}: there is no key {key} (a new key is added with +{key}=…)"
                ) from None
            except Exception:  # beneath an optional node (data.generator) that a data option fills in
                break


def refuse_leaving_folder(override: Any) -> None:
    """An experiment names its sweep's folder under multirun/ (`experiment=greff/cifg` is
    multirun/greff/cifg): a name with `..`, or a root, would put the sweep elsewhere."""
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    for value in values:
        parts = str(value).replace("\\", "/").split("/")
        if value is not None and (str(value).startswith(("/", "~")) or any(p in ("", ".", "..") for p in parts)):
            raise ConfigError(
                f"{override.input_line}: an experiment is a name (experiments/report2021.yaml is "
                "experiment=report2021), not a path: its sweep's folder is multirun/<name>"
            )
