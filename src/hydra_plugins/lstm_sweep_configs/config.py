"""The run's structured configs in Hydra's ConfigStore, registered as Hydra scans its plugins
(as Hydra's own plugins register theirs), so every composition — lstm-train, `hydra.compose`
in a notebook or a test, a launcher's worker — finds them."""

from lstm_sweep.run.config import register

register()
