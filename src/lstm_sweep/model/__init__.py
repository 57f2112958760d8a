"""The cells and the language model: the equations (cells.py), time and depth (stack.py), the
sequence-level fast path (fast.py, csrc/), embedding → stack → decoder (lm.py), and the model
keys (config.py)."""
