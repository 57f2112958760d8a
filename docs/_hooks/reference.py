"""MkDocs hook: the pages that come from the code and the repository, not from docs/.

- reference/configuration.md: every config key, from the dataclasses that declare it (their
  type, default, allowed values and documentation) and the YAML options of each group;
- reference/cli.md: every command's --help, from the parsers the commands use;
- changelog.md and contributing.md: the repository's CHANGELOG.md and CONTRIBUTING.md;
- reports/report2021/ and reports/odyssey/: the committed reports, so the site shows what the
  repository holds.

Nothing here is written by hand, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
MOUNTED = {"CHANGELOG.md": "changelog.md", "CONTRIBUTING.md": "contributing.md"}
REPORTS = ("report2021", "odyssey")


def on_files(files: Files, config) -> Files:
    os.environ["COLUMNS"] = "100"  # argparse wraps --help to the terminal's width
    pages = {"reference/configuration.md": configuration_page(), "reference/cli.md": cli_page()}
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    for source, uri in MOUNTED.items():  # their links into docs/ are the site's own pages
        text = (ROOT / source).read_text().replace("](docs/", "](")
        files.append(File.generated(config, uri, content=text))
    for report in REPORTS:
        folder = ROOT / "reports" / report
        for path in sorted(folder.iterdir()):
            if path.name == "REPORT.md" or path.suffix in (".png", ".pdf", ".csv"):  # its tables are in REPORT.md
                uri = f"reports/{report}/{path.name}"
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


# --------------------------------------------------------------------------- configuration


def type_name(annotation) -> str:
    if isinstance(annotation, str):
        text = annotation
    else:  # a plugin's config, whose annotations are not postponed
        text = annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")
    if text.startswith("Optional[") and text.endswith("]"):
        return f"{text[len('Optional[') : -1]} or null"
    return text


def default_of(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "—"
    if dataclasses.is_dataclass(value):
        return "(below)"
    if value is None:
        return "`null`"
    if value == "???":
        return "required"
    text = str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else str(value)
    return f"`{text}`"


def markdown_text(text: str) -> str:
    """Plain text in a table cell: `<eos>` is no HTML tag, `|` no cell border."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def table(prefix: str, schema, skip: tuple[str, ...] = ()) -> str:
    """One row a key of `schema`; nested dataclasses get a table of their own (`nested`)."""
    from lstm_sweep.fields import allowed

    rows = ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for field in dataclasses.fields(schema):
        if field.name in skip:
            continue
        meaning = markdown_text(field.metadata.get("doc", ""))
        if field.metadata.get("lightning"):
            meaning += " — passed to Lightning's `Trainer`"
        rows.append(
            f"| `{prefix}{field.name}` | {type_name(field.type)} | {default_of(field)} | "
            f"{allowed(field.metadata) or '—'} | {meaning} |"
        )
    return "\n".join(rows)


def yaml_options(group: str) -> str:
    """The options of a YAML config group: each file's leading comment."""
    from hydra_plugins.lstm_sweep_configs.source import config_folders

    conf, experiments = config_folders()
    folder = experiments if group == "experiment" else conf / group
    rows = ["| option | what |", "| --- | --- |"]
    for path in sorted(folder.glob("*.yaml")):
        comment = []
        for line in path.read_text().splitlines():
            if line.startswith("# @package"):
                continue
            if not line.startswith("#"):
                break
            comment.append(line.lstrip("# ").strip())
        what = markdown_text(" ".join(comment))
        rows.append(f"| `{group}={path.stem}` | {what} |")
    return "\n".join(rows)


def configuration_page() -> str:
    from hydra_plugins.lstm_sweep_grid.config import GridSweeperConfig
    from hydra_plugins.lstm_sweep_slurm.config import SlurmLauncherConfig
    from lstm_sweep.data.config import DataConfig, DownloadConfig, GeneratorConfig
    from lstm_sweep.model.config import ModelConfig
    from lstm_sweep.run.config import LOGGERS, OPTIMIZERS, SCHEDULES, MLflowConfig, RunConfig, TrainerConfig

    parts = [
        "# Configuration reference",
        "",
        "Every key a run or sweep reads, generated from the dataclasses that declare it "
        "(`src/lstm_sweep/*/config.py`, the Hydra plugins' `config.py`) and the YAML options in "
        "`conf/` and `experiments/`. Override any key on the command line (`lstm-train "
        "model.cell=two seed=3`); pick a group's option with `group=option` (`data=ptb`, "
        "`optim=sgd`, `experiment=report2021`). A value of the wrong type or an unknown key is "
        "refused as the command line is read; a value outside what a key allows stops the run "
        "before training, in one line naming the key. `lstm-train --cfg job` prints a composed config.",
        "",
        "## The run",
        "",
        table("", RunConfig, skip=("data", "model", "trainer", "logger")),
        "",
        "## data",
        "",
        "The corpus; `data=NAME` picks one of the options below, each setting some of these keys.",
        "",
        yaml_options("data"),
        "",
        table("data.", DataConfig, skip=("generator", "download")),
        "",
        "### data.generator",
        "",
        "The built-in corpus's source (set by `data=synthetic`: a corpus with a generator is generated).",
        "",
        table("data.generator.", GeneratorConfig),
        "",
        "### data.download",
        "",
        "A public corpus fetched once into `data.cache_dir` (set by `data=ptb`, `data=timemachine`).",
        "",
        table("data.download.", DownloadConfig),
        "",
        "## model",
        "",
        table("model.", ModelConfig),
        "",
        "## optim",
        "",
        f"`optim=NAME` picks one of {', '.join(f'`{n}`' for n in OPTIMIZERS)} (default `adam`). "
        "Built by Hydra from `optim._target_`, so any `torch.optim` class taking these arguments "
        "works: `optim._target_=torch.optim.NAdam`.",
    ]
    for name, schema in OPTIMIZERS.items():
        parts += ["", f"### optim={name}", "", table("optim.", schema)]
    parts += [
        "",
        "## schedule",
        "",
        f"`schedule=NAME` picks one of {', '.join(f'`{n}`' for n in SCHEDULES)} (default `none`).",
    ]
    for name, schema in SCHEDULES.items():
        parts += ["", f"### schedule={name}", "", table("schedule.", schema)]
    parts += [
        "",
        "## trainer",
        "",
        table("trainer.", TrainerConfig),
        "",
        "## logger",
        "",
        f"TensorBoard always logs; `logger=NAME` ({', '.join(f'`{n}`' for n in LOGGERS)}) adds others beside it.",
        "",
        table("logger.", LOGGERS["tensorboard"]),
        "",
        "### logger.mlflow",
        "",
        table("logger.mlflow.", MLflowConfig),
        "",
        "## experiment",
        "",
        "Named settings from `experiments/`, applied after everything else (`experiment=NAME`; "
        "`DIR/experiment/NAME.yaml` with `--config-dir DIR` for your own).",
        "",
        yaml_options("experiment"),
        "",
        "## hydra.sweeper (hydra/sweeper=grid, the default)",
        "",
        table("hydra.sweeper.", GridSweeperConfig, skip=("_target_",)),
        "",
        "## hydra.launcher (hydra/launcher=slurm)",
        "",
        "Submit the sweep to SLURM and return ([SLURM](../guides/slurm.md)).",
        "",
        table("hydra.launcher.", SlurmLauncherConfig, skip=("_target_",)),
        "",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------- commands


def cli_page() -> str:
    """Every console script the installed package declares, by the parser its module builds
    (lstm-train's is Hydra's own), so a new command appears here without an edit."""
    import importlib
    from importlib.metadata import distribution

    from hydra._internal.utils import get_args_parser

    declared = [ep for ep in distribution("lstm-sweep").entry_points if ep.group == "console_scripts"]
    rank = {name: k for k, name in enumerate(["lstm-train", "lstm-sweep", "lstm-aggregate", "lstm-generate"])}
    scripts = {ep.name: ep.value for ep in sorted(declared, key=lambda ep: (rank.get(ep.name, len(rank)), ep.name))}
    parts = [
        "# Command-line reference",
        "",
        "Each command's `--help`, generated from the parser it uses. A bad option or value is one "
        "line and exit status 1.",
        "",
    ]
    for name, target in scripts.items():
        module = importlib.import_module(target.split(":")[0])
        if hasattr(module, "build_parser"):
            parser = module.build_parser()
            what = parser.description
        else:  # lstm-train: Hydra reads its command line
            parser = get_args_parser()
            parser.prog, parser.description = name, "One run, or with --multirun a sweep of runs."
            for action in parser._actions:
                if {"--shell-completion", "--experimental-rerun"} & set(action.option_strings):
                    action.help = argparse.SUPPRESS  # Hydra's shell set-up and experiments: not ours to document
            what = (
                "One run, or with `-m` a sweep of runs, as Hydra composes it. Its overrides are the "
                "[configuration](configuration.md)'s keys; the options are Hydra's own."
            )
        parts += [f"## {name}", "", what, "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts)
