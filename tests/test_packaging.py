"""The YAML building blocks ship with the package: a wheel carries conf/ and experiments/ as
data beside the code, and Hydra finds them whether the package is installed or editable."""

import subprocess
import sys
import zipfile
from pathlib import Path

import lstm_sweep
from hydra_plugins.lstm_sweep_configs.source import config_folders

ROOT = Path(__file__).resolve().parents[1]


def test_hydra_reads_the_yaml_of_the_package_it_runs():
    """Editable: the repository's conf/ and experiments/; installed: the copies the package
    carries, which are the repository's."""
    conf, experiments = config_folders()
    package = Path(lstm_sweep.__file__).resolve().parent
    if package == ROOT / "src" / "lstm_sweep":
        assert (conf, experiments) == (ROOT / "conf", ROOT / "experiments")
    else:
        assert (conf, experiments) == (package / "conf", package / "experiments")
    for ours, theirs in ((ROOT / "conf", conf), (ROOT / "experiments", experiments)):
        files = sorted(p.relative_to(ours) for p in ours.rglob("*.yaml"))
        assert files and files == sorted(p.relative_to(theirs) for p in theirs.rglob("*.yaml"))
        assert all((ours / f).read_text() == (theirs / f).read_text() for f in files)


def build_wheel(folder: Path) -> Path:
    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(folder), versions=["standard"])
    return Path(wheel)


def test_the_wheel_carries_every_config_and_the_kernels_source(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    yaml = {f"lstm_sweep/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    yaml |= {f"lstm_sweep/experiments/{p.name}" for p in (ROOT / "experiments").glob("*.yaml")}
    assert yaml and yaml <= names
    assert {
        "lstm_sweep/model/csrc/lstm_kernels.cpp",
        "lstm_sweep/py.typed",
        "hydra_plugins/lstm_sweep_configs/source.py",
    } <= names
    assert not [n for n in names if n.startswith(("tests/", "docs/", "reports/"))]


COMPOSE_FROM_THE_WHEEL = """
import lstm_sweep
from lstm_sweep.run.config import compose
import lstm_sweep
from hydra_plugins.lstm_sweep_configs.source import config_folders
cfg = compose("experiment=report2021", "data.root=x")
print(lstm_sweep.__file__, config_folders()[1], cfg.optim.lr, cfg.model.hidden_size, sep="\\n")
"""


def test_an_installed_wheel_composes_from_the_yaml_it_carries(tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(build_wheel(tmp_path)).extractall(site)
    proc = subprocess.run(
        [sys.executable, "-c", COMPOSE_FROM_THE_WHEEL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    package, experiments, lr, hidden = proc.stdout.split()
    assert Path(package).is_relative_to(site) and Path(experiments) == site / "lstm_sweep" / "experiments"
    assert (float(lr), int(hidden)) == (0.0005, 256)
