"""Hydra configs; installed as the package lstm_sweep.conf so `pip install .` finds them."""
