"""`lstm-sweep://`: the YAML building blocks as one config tree — the repository's top-level
`conf/` (config.yaml, the data group …) with `experiments/` as its `experiment` group.

A wheel installs both folders as data beside the package (lstm_sweep/conf, lstm_sweep/
experiments); an editable install runs from the repository, where they stand at the top.
Hydra's own sources read one folder (`file://`) or one package holding an `__init__.py`
(`pkg://`); neither can name experiments/ the `experiment` group, and a package would put
Python outside src/ — hence this source.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import OmegaConf

import lstm_sweep

SCHEME = "lstm-sweep"
EXPERIMENT_GROUP = "experiment"


def config_folders() -> tuple[Path, Path]:
    """conf/ and experiments/: installed with the package, or the repository's (editable)."""
    package = Path(lstm_sweep.__file__).resolve().parent
    for root in (package, package.parents[1]):  # site-packages/lstm_sweep, or <repo>/src/lstm_sweep → <repo>
        if (root / "conf" / "config.yaml").is_file():
            return root / "conf", root / "experiments"
    raise FileNotFoundError(f"lstm-sweep's conf/ is neither in {package} nor in the repository around it")


class LstmSweepConfigSource(ConfigSource):
    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.conf, self.experiments = config_folders()

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _where(self, config_path: str) -> Path:
        """The file or folder of a config path: experiment/… lies in experiments/."""
        group, _, rest = config_path.strip("/").partition("/")
        return self.experiments / rest if group == EXPERIMENT_GROUP else self.conf / config_path

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._where(self._normalize_file_name(config_path))
        if not path.is_file():
            raise ConfigLoadError(f"Config not found : {path}")
        text = path.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.load(path),
            path=self.full_path(),
            provider=self.provider,
            header=ConfigSource._get_header_dict(text[:512]),
        )

    def available(self) -> bool:
        return self.conf.is_dir()

    def is_group(self, config_path: str) -> bool:
        return self._where(config_path).is_dir()

    def is_config(self, config_path: str) -> bool:
        return self._where(self._normalize_file_name(config_path)).is_file()

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        names = set(os.listdir(self._where(config_path)))
        if not config_path.strip("/"):
            names.add(EXPERIMENT_GROUP)
        found: list[str] = []
        for name in names:
            self._list_add_result(found, os.path.join(config_path, name), name, results_filter)
        return sorted(set(found))
