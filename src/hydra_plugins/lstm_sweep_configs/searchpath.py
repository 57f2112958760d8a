"""Every Hydra search path gets lstm-sweep's YAML building blocks (source.py), after the
primary config path and any `--config-dir`, so a user's folder can add and shadow options."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from hydra_plugins.lstm_sweep_configs.source import SCHEME


class LstmSweepSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="lstm-sweep", path=f"{SCHEME}://")
