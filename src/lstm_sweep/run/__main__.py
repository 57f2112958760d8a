"""`python -m lstm_sweep.run` is lstm-train (what lstm-sweep starts as its child process)."""

from lstm_sweep.run.train import main
from lstm_sweep.sweep.child import stop_with_parent

stop_with_parent()
main()
