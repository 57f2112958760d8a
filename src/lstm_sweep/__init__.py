"""lstm-sweep: reproducible Hydra sweeps of language models with hand-written LSTM cells."""

__version__ = "0.1.0"
