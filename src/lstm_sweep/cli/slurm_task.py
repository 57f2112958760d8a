"""One task of a submitted sweep's job array (lstm_sweep.sweep.slurm): `python -m
lstm_sweep.cli.slurm_task TASKS_FILE INDEX` becomes the grid's run INDEX, trained by
`lstm-train -m` as a sweep of that one run in its own folder — so it is skipped if
finished, resumed if interrupted, and recorded as the sweep's other runs are. It runs in
this process, the batch script's own (exec), so SLURM's signals reach the run; the
time-limit warning is caught from the start.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    from lstm_sweep.run.slurm import TimeLimitWarning

    TimeLimitWarning.install()  # before torch loads: an early warning must not end the process
    from lstm_sweep.sweep.slurm import task_arguments

    arguments = task_arguments(Path(sys.argv[1]), int(sys.argv[2]))
    from lstm_sweep.cli.train import main as lstm_train

    sys.argv = ["lstm-train", *arguments]
    lstm_train()


if __name__ == "__main__":
    main()
