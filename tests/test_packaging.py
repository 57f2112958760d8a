"""Every config group ships in the wheel: `pip install .` finds them from any directory."""

from importlib import resources
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_group_is_a_listed_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    groups = {f"lstm_sweep.conf.{p.name}" for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert groups | {"lstm_sweep.conf.experiment"} <= set(setuptools["packages"])
    for package in groups:
        assert setuptools["package-data"][package] == ["*.yaml"], package


def test_installed_configs_match_the_repository():
    installed = resources.files("lstm_sweep.conf")
    for path in (ROOT / "conf").rglob("*.yaml"):
        assert installed.joinpath(*path.relative_to(ROOT / "conf").parts).read_text() == path.read_text(), path
    for path in (ROOT / "experiments").glob("*.yaml"):
        assert installed.joinpath("experiment", path.name).read_text() == path.read_text(), path
