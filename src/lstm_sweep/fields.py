"""Config fields that state what they allow, and the check that enforces it.

Each room's config dataclasses (`model/config.py`, `data/config.py`, `run/config.py`, the
Hydra plugins' `config.py`) declare their keys with these helpers: a default, a line of
documentation (the configuration reference is generated from it) and, where a type cannot
say it, the allowed values — a list of choices or a range. Hydra composes the YAML on top
of the dataclasses, so OmegaConf already refuses a value of the wrong type or an unknown
key; `check_fields` refuses the rest in one line naming the key, its value and what is
allowed. Rules that link two keys are each room's `CHECKS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from lstm_sweep.errors import ConfigError

# A rule linking several keys: the whole config in, None or what is wrong (one line) out.
Check = Callable[[Any], "str | None"]


def setting(default: Any = MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A key with a default (or a `factory` for a list or mapping) and its documentation."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def one_of(*choices: str, default: str, doc: str = "") -> Any:
    return field(default=default, metadata={"doc": doc, "choices": choices})


def at_least(low: float, default: Any, strict: bool = False, doc: str = "") -> Any:
    """A number >= low (> low if strict); None passes where the type is Optional."""
    return field(default=default, metadata={"doc": doc, "low": low, "strict": strict})


def within(
    low: float,
    high: float,
    default: Any,
    low_open: bool = False,
    high_open: bool = False,
    doc: str = "",
) -> Any:
    return field(
        default=default,
        metadata={"doc": doc, "low": low, "high": high, "low_open": low_open, "high_open": high_open},
    )


def allowed(meta: Any) -> str:
    """What a field's metadata allows, in words ("" when its type says it all)."""
    if "choices" in meta:
        return "one of " + ", ".join(meta["choices"])
    if "high" in meta:
        left, right = "(" if meta["low_open"] else "[", ")" if meta["high_open"] else "]"
        return f"in {left}{number(meta['low'])}, {number(meta['high'])}{right}"
    if "low" in meta:
        return f"{'>' if meta['strict'] else '>='} {number(meta['low'])}"
    return ""


def number(bound: float) -> str:
    """A bound as people write it: 4294967295, not 4.29497e+09."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def fault(value: Any, meta: Any) -> str | None:
    """What is wrong with `value` under a field's metadata, or None."""
    if value is None:
        return None
    if "choices" in meta:
        return None if value in meta["choices"] else f"is not {allowed(meta)}"
    if "high" in meta:
        low, high = meta["low"], meta["high"]
        inside = (value > low if meta["low_open"] else value >= low) and (
            value < high if meta["high_open"] else value <= high
        )
        return None if inside else f"must be {allowed(meta)}"
    if "low" in meta:
        ok = value > meta["low"] if meta["strict"] else value >= meta["low"]
        if isinstance(value, int):
            return None if ok else f"must be an integer {allowed(meta)}"
        return None if math.isfinite(value) and ok else f"must be a finite number {allowed(meta)}"
    return None


def check_fields(node: DictConfig, path: str = "") -> None:
    """Raise ConfigError naming the first key whose value its field does not allow."""
    schema = OmegaConf.get_type(node)
    for f in fields(schema) if is_dataclass(schema) else ():
        value = node.get(f.name)
        key = f"{path}{f.name}"
        if isinstance(value, DictConfig):
            check_fields(value, f"{key}.")
        elif (problem := fault(value, f.metadata)) is not None:
            raise ConfigError(f"{key}={value!r} {problem}")


def plain(cfg: Any, resolve: bool = True) -> dict[str, Any]:
    """A config mapping as plain Python (dicts, lists, values), interpolations resolved."""
    container = OmegaConf.to_container(cfg, resolve=resolve)
    if not isinstance(container, dict):
        raise TypeError(f"a config mapping was expected, not {type(container).__name__}")
    return cast(dict[str, Any], container)


def run_checks(cfg: Any, checks: tuple[Check, ...]) -> None:
    """Raise ConfigError with the first cross-key rule that `cfg` breaks."""
    for check in checks:
        if (problem := check(cfg)) is not None:
            raise ConfigError(problem)
