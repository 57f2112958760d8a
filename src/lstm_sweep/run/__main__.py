"""`python -m lstm_sweep.run` is lstm-train (what lstm-sweep starts as its child process)."""

from lstm_sweep.run.train import main

main()
