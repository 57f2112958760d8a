"""What `model.cell` can name, and the class it names.

- a built-in cell: `one`, `two` (the compared LSTM cells), `gru`, `rnn` (cells.py) and the
  LSTM variants of Greff et al., `vanilla`, `nig`, `nfg`, `nog`, `niaf`, `noaf`, `np`,
  `cifg`, `fgr` (zoo.py);
- a registered cell: a class decorated with `@register_cell("name")` in code that has been
  imported, or one an installed package names in the `lstm_sweep.cells` entry-point group
  (`[project.entry-points."lstm_sweep.cells"] mycell = "mypkg.cells:MyCell"`);
- a class by its dotted path: `mypkg.cells.MyCell` (or `mypkg.cells:MyCell`), imported on
  first use — so a sweep can put a user's cell beside the built-ins with no edit here.

`torch` names nn.LSTM behind the same interface, a speed baseline (stack.py), not a cell.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from lstm_sweep.errors import ConfigError
from lstm_sweep.model import zoo  # noqa: F401  # registers the variants
from lstm_sweep.model.cells import REGISTERED, RecurrentCell

ENTRY_POINT_GROUP = "lstm_sweep.cells"
BASELINE = "torch"
CELLS = REGISTERED  # every registered name → its class, the built-ins first


def names() -> list[str]:
    """Every name `model.cell` takes, entry points included (the baseline aside)."""
    return [*REGISTERED, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in REGISTERED)]


def resolve_cell(spec: str) -> type[RecurrentCell]:
    """The cell class `model.cell=spec` names; ConfigError, in one line, if it names none."""
    if spec in REGISTERED:
        return REGISTERED[spec]
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if found:
        return _cell_class(spec, lambda: found[0].load(), f"entry point {found[0].value}")
    module_name, sep, attribute = spec.replace(":", ".").rpartition(".")
    if not sep or not module_name:
        raise ConfigError(
            f"model.cell={spec!r} is not a cell: neither a built-in or registered one "
            f"({', '.join(names())}, or {BASELINE}) nor a dotted path to a class (mypkg.cells.MyCell)"
        )
    return _cell_class(spec, lambda: getattr(_import(spec, module_name), attribute), spec)


def _import(spec: str, module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"model.cell={spec!r}: cannot import {module_name} ({type(err).__name__}: {err})") from None


def _cell_class(spec: str, load, where: str) -> type[RecurrentCell]:
    try:
        cell = load()
    except ConfigError:
        raise
    except AttributeError as err:
        raise ConfigError(f"model.cell={spec!r}: {where} does not exist ({err})") from None
    except Exception as err:  # the user's module raised while it was imported
        raise ConfigError(f"model.cell={spec!r}: loading {where} failed ({type(err).__name__}: {err})") from None
    if not (isinstance(cell, type) and issubclass(cell, RecurrentCell)):
        raise ConfigError(
            f"model.cell={spec!r}: {where} is not a cell: a cell is a subclass of "
            "lstm_sweep.model.cells.RecurrentCell (docs: your own cell)"
        )
    return cell
