"""Each job's config of a grid, as Hydra composes it for the job, in milliseconds rather than
Hydra's 0.1–0.2 s: a 2,000-run grid is named, checked and previewed in seconds.

A grid's jobs differ mostly in plain values (`seed=3`, `model.cell=two`). Hydra composes a job
in two steps: the defaults list (config files, chosen by config-group overrides such as
`optim=sgd` or `experiment=…`), then each value override applied in order to the result. So
Hydra composes once per distinct set of group choices, and each job's value overrides are then
applied to that composition with Hydra's own function, its override records and
`override_dirname` set as Hydra sets them. Value overrides that add, delete or set a list
or mapping (where applying twice is not applying once) are part of the template, as group
choices are; where one shares a key with a plain value, Hydra composes the job in full.
tests/test_compose.py holds this to Hydra's composition, key for key, over a grid of every kind.

Reading is why this is not Hydra's `load_sweep_config` called per job: the config a job gets
here is the one shared composition, changed in place, and valid until the next job's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict

Job = TypeVar("Job")
PLAIN = (str, int, float, bool, type(None))


class GridComposer:
    """Job configs of one sweep (`config`, Hydra's composition for the whole multirun)."""

    def __init__(self, config: DictConfig, config_loader: Any):
        self.config, self.config_loader = config, config_loader
        self.parser = OverridesParser.create(config_loader=config_loader)
        self.parsed: dict[str, Override] = {}  # override line → its parse: grids repeat values
        self.groups = set(config.hydra.runtime.choices)  # keys that choose config files
        self.templates: dict[tuple, DictConfig] = {}  # by what Hydra composed: see compose()
        self.master_hydra = list(config.hydra.overrides.hydra)

    def parse(self, line: str) -> Override:
        if line not in self.parsed:
            self.parsed[line] = self.parser.parse_overrides([line])[0]
        return self.parsed[line]

    def compose(self, job: list[str]) -> DictConfig:
        """The job's config as Hydra's load_sweep_config gives it: shared, valid until the
        next call (copy what must outlive it)."""
        overrides = [self.parse(line) for line in job]
        again = [o for o in overrides if self._applies_again(o)]
        if self._entangled(again, [o for o in overrides if not self._is_group(o)]):
            return self._hydra(job)  # an order that matters: Hydra's, in full
        key = tuple(("value", o.key_or_group) if o in again else o.input_line for o in overrides)
        if key not in self.templates:
            self.templates[key] = cfg = self._hydra(job)
            self.groups |= set(cfg.hydra.runtime.choices)  # an experiment may bring its own groups
            return cfg
        cfg = self.templates[key]
        ConfigLoaderImpl._apply_overrides_to_config(again, cfg)
        task = [o for o in overrides if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            hydra_lines = [*self.master_hydra, *(o.input_line for o in overrides if o.is_hydra_override())]
            records = cfg.hydra.overrides
            for name, lines in (("hydra", hydra_lines), ("task", [o.input_line for o in task])):
                for i, line in enumerate(lines):  # same key, same length: only the values differ
                    if records[name][i] != line:
                        records[name][i] = line
            names = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                exclude_keys=list(names.exclude_keys),
                item_sep=names.item_sep,
                kv_sep=names.kv_sep,
            )
        return cfg

    def each(self, jobs: Iterable[tuple[list[str], Job]]) -> Iterator[tuple[Job, DictConfig]]:
        """(what the caller keeps with each job, the job's config) for jobs given as
        (overrides, anything): one at a time, as compose() gives them."""
        for overrides, kept in jobs:
            yield kept, self.compose(overrides)

    def _hydra(self, job: list[str]) -> DictConfig:
        return self.config_loader.load_sweep_config(self.config, list(job))

    def _is_group(self, override: Override) -> bool:
        key = override.key_or_group
        return override.package is not None or "/" in key or key in self.groups

    def _applies_again(self, override: Override) -> bool:
        """A value override that, applied again after Hydra applied them all, leaves the same
        config: one that sets a key to a plain value. The others are part of the template."""
        return (
            not self._is_group(override)
            and override.type == OverrideType.CHANGE
            and isinstance(override.value(), PLAIN)
        )

    @staticmethod
    def _entangled(again: list[Override], values: list[Override]) -> bool:
        """Whether two value overrides share a key, or one's key is the other's parent
        (`reference=null` and `reference.source=x`), unless both set the same key to a plain
        value: then applying the plain ones again, after Hydra applied them all in order, may
        not be applying each in its place among them."""
        keys = [(o.key_or_group + ".", o in again) for o in values]
        return any(
            (a.startswith(b) or b.startswith(a)) and not (a == b and plain_a and plain_b)
            for i, (a, plain_a) in enumerate(keys)
            for b, plain_b in keys[i + 1 :]
        )


def quote(value: str) -> str:
    """A Hydra override value that gives back `value` in the config: Hydra reads a backslash
    as an escape only before a quote or at the end, and OmegaConf `${` as an interpolation."""
    text = re.sub(r"(\\+)(?='|$)", r"\1\1", value).replace("'", "\\'").replace("${", "\\${")
    return f"'{text}'"


def task_config(cfg: DictConfig) -> DictConfig:
    """The run's own config: the job config without Hydra's node."""
    return OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"])
