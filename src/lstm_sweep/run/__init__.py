"""One run: its whole config (config.py), the LightningModule, callbacks, loggers and
summary, its folder, resuming and SLURM job handling, training (train.py) and sampling
(generate.py)."""
