"""`hydra/launcher=slurm`'s keys — lstm_sweep.sweep.slurm's SlurmSettings, which the
submission takes — in Hydra's ConfigStore as Hydra scans its plugins."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from lstm_sweep.sweep.slurm import SlurmSettings


@dataclass
class SlurmLauncherConfig(SlurmSettings):
    _target_: str = "hydra_plugins.lstm_sweep_slurm.launcher.SlurmLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="slurm", node=SlurmLauncherConfig, provider="lstm-sweep")
