"""An independent float64 numpy step of Greff et al.'s LSTM variants: the zoo's oracle.

Written from the paper's equations, not from zoo.py: one function, the variant as a set of
the changes it makes to the vanilla LSTM (V), the parameters by the names the cells give
them (W_z, R_z, b_z, …, p_i, p_f, p_o, and G_i, G_f, G_o for FGR).
"""

import numpy as np

CHANGES = {
    "vanilla": set(),
    "nig": {"NIG"},
    "nfg": {"NFG"},
    "nog": {"NOG"},
    "niaf": {"NIAF"},
    "noaf": {"NOAF"},
    "np": {"NP"},
    "cifg": {"CIFG"},
    "fgr": {"FGR"},
}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def greff_step(variant: str, p: dict, x, state):
    """One step: x (B, E), state (y, c) or, for FGR, (y, c, i, f, o) → the next state."""
    changes = CHANGES[variant]
    y, c = state[0], state[1]
    previous_gates = np.concatenate(state[2:], axis=1) if "FGR" in changes else None
    peep = "NP" not in changes

    def net(gate):
        a = x @ p[f"W_{gate}"].T + y @ p[f"R_{gate}"].T + p[f"b_{gate}"]
        if previous_gates is not None and gate in "ifo":
            a = a + previous_gates @ p[f"G_{gate}"].T
        return a

    block = net("z") if "NIAF" in changes else np.tanh(net("z"))
    i = np.ones_like(c) if "NIG" in changes else sigmoid(net("i") + (p["p_i"] * c if peep else 0))
    if "CIFG" in changes:
        f = 1.0 - i
    elif "NFG" in changes:
        f = np.ones_like(c)
    else:
        f = sigmoid(net("f") + (p["p_f"] * c if peep else 0))
    c_new = block * i + c * f
    o = np.ones_like(c) if "NOG" in changes else sigmoid(net("o") + (p["p_o"] * c_new if peep else 0))
    y_new = (c_new if "NOAF" in changes else np.tanh(c_new)) * o
    return (y_new, c_new, i, f, o) if "FGR" in changes else (y_new, c_new)
