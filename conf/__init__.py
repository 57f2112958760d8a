"""Hydra configs, installed as the package lstm_sweep.conf so `pip install .` finds them.

Importing it registers the schema (schema.py) with Hydra's ConfigStore, which every
composition of `config.yaml` needs first.
"""

from lstm_sweep.conf.schema import register

register()
