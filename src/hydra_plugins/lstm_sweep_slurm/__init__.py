"""`hydra/launcher=slurm`: a sweep submitted to SLURM as one job array and a report job, and
left alone (launcher.py; its keys in config.py, its work in lstm_sweep.sweep.slurm)."""
