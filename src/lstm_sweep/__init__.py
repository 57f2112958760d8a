"""lstm-sweep: reproducible Hydra sweeps of language models with hand-written LSTM cells.

The rooms follow the pipeline — model, data, run, sweep, analysis — with the command-line
applications (cli/) and the Python API for notebooks (api.py) on the floor above them.
"""

__version__ = "0.4.0"
