"""One task of a submitted sweep's job array (slurm.py): `python -m lstm_sweep.sweep.task
TASKS_FILE INDEX` becomes the grid's run INDEX, trained by `lstm-train -m` as a sweep of that
one run in its own folder — so it is skipped if finished, resumed if interrupted, and
recorded as the sweep's other runs are. The process is replaced, not forked: SLURM's
signals reach the run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def task_command(tasks_file: Path, index: int) -> list[str]:
    from lstm_sweep.sweep.grid import quote

    task = json.loads(tasks_file.read_text())[index]
    return [sys.executable, "-m", "lstm_sweep.run", "--multirun", *task["overrides"],
            f"hydra.sweep.dir={quote(task['sweep_dir'])}", f"hydra.sweep.subdir={quote(task['run'])}",
            "hydra/launcher=basic", "hydra.sweeper.task=true"]


def main() -> None:
    tasks_file, index = Path(sys.argv[1]), int(sys.argv[2])
    command = task_command(tasks_file, index)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
