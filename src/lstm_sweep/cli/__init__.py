"""The command-line applications, on a floor of their own above the pipeline: `lstm-train`
(train.py), `lstm-sweep` (sweep.py), `lstm-aggregate` (aggregate.py), `lstm-generate`
(generate.py) and `lstm-bench` (bench.py), and a submitted sweep's array task
(slurm_task.py). Each parses its command line, calls into the pipeline's rooms and turns a
user's error into one line and exit status 1."""
