"""`hydra/sweeper=grid`, lstm-sweep's sweeper: Hydra's grid, with run folders named by the
swept keys, the sweep recorded in sweep.json, a dry run and a SLURM task mode (sweeper.py;
its keys in config.py, its work in lstm_sweep.sweep.grid)."""
