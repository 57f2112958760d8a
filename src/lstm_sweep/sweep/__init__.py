"""Many runs: the grid sweeper's work (grid.py), the HPARAMS columns, SLURM submission,
--status, progress and the sweep's child process."""
