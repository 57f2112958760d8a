"""Where Hydra finds lstm-sweep's configs: the YAML building blocks (conf/, with experiments/
as the `experiment` group) through `source.py`, put on every search path by `searchpath.py`,
and the run's schema, optimizers, schedules and loggers in the ConfigStore (`config.py`)."""
