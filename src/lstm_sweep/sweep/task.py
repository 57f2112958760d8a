"""One task of a submitted sweep's job array (slurm.py): `python -m lstm_sweep.sweep.task
TASKS_FILE INDEX` becomes the grid's run INDEX, trained by `lstm-train -m` as a sweep of that
one run in its own folder — so it is skipped if finished, resumed if interrupted, and
recorded as the sweep's other runs are. It runs in this process, the batch script's own
(exec), so SLURM's signals reach the run; the time-limit warning is caught from the start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def task_arguments(tasks_file: Path, index: int) -> list[str]:
    """lstm-train's command line for the task's run."""
    from lstm_sweep.sweep.grid import quote

    task = json.loads(tasks_file.read_text())[index]
    return ["--multirun", *task["overrides"], f"hydra.sweep.dir={quote(task['sweep_dir'])}",
            f"hydra.sweep.subdir={quote(task['run'])}", "hydra/launcher=basic", "hydra.sweeper.task=true"]


def main() -> None:
    from lstm_sweep.run.slurm import TimeLimitWarning

    TimeLimitWarning.install()  # before torch loads: an early warning must not end the process
    arguments = task_arguments(Path(sys.argv[1]), int(sys.argv[2]))
    from lstm_sweep.run.train import main as lstm_train

    sys.argv = ["lstm-train", *arguments]
    lstm_train()


if __name__ == "__main__":
    main()
