"""An independent numpy LSTM with a hand-derived BPTT backward: the tests' oracle.

Written in model one's form (gates f, i, ĉ, o over z = [h, x]); model two is checked
through the exact mapping W_g = [W_hg | W_ig], b_g = b_ig + b_hg. Forward per step:

    a_g = W_g z_t + b_g,  f, i, o = σ(a_f, a_i, a_o),  ĉ = tanh(a_c)
    c_t = f ⊙ c_{t-1} + i ⊙ ĉ,  h_t = o ⊙ tanh(c_t)

Backward, from t = T down to 1, with dh_t the gradient reaching h_t (from the output at t
and from step t+1) and dc_t the gradient reaching c_t from step t+1:

    dc_t += dh_t ⊙ o ⊙ (1 − tanh²c_t)         do = dh_t ⊙ tanh c_t
    df = dc_t ⊙ c_{t-1}   di = dc_t ⊙ ĉ   dĉ = dc_t ⊙ i   dc_{t-1} = dc_t ⊙ f
    da_f = df ⊙ f(1−f)   da_i = di ⊙ i(1−i)   da_c = dĉ ⊙ (1−ĉ²)   da_o = do ⊙ o(1−o)
    dW_g += da_gᵀ z_t    db_g += Σ_batch da_g   dz_t = Σ_g da_g W_g = [dh_{t-1} | dx_t]
"""

import numpy as np

GATES = "fico"


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def layer_forward(x, h0, c0, W, b):
    """x (T, B, E); W[g] (H, H+E), b[g] (H,). Returns hs (T, B, H), (h_T, c_T), cache."""
    h, c = h0, c0
    hs, cache = [], []
    for x_t in x:
        z = np.concatenate([h, x_t], axis=1)
        f = sigmoid(z @ W["f"].T + b["f"])
        i = sigmoid(z @ W["i"].T + b["i"])
        c_hat = np.tanh(z @ W["c"].T + b["c"])
        o = sigmoid(z @ W["o"].T + b["o"])
        c_prev = c
        c = f * c_prev + i * c_hat
        h = o * np.tanh(c)
        cache.append((z, f, i, c_hat, o, c_prev, c))
        hs.append(h)
    return np.stack(hs), (h, c), cache


def layer_backward(d_hs, d_hT, d_cT, W, cache):
    """Gradients of a loss given dL/dhs (T, B, H) and dL/d(h_T, c_T)."""
    H = d_hT.shape[1]
    dW = {g: np.zeros_like(W[g]) for g in GATES}
    db = {g: np.zeros(W[g].shape[0]) for g in GATES}
    dx = []
    dh_next, dc_next = d_hT.copy(), d_cT.copy()
    for t in reversed(range(len(cache))):
        z, f, i, c_hat, o, c_prev, c = cache[t]
        dh = d_hs[t] + dh_next
        tanh_c = np.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c**2)
        da = {
            "f": dc * c_prev * f * (1 - f),
            "i": dc * c_hat * i * (1 - i),
            "c": dc * i * (1 - c_hat**2),
            "o": dh * tanh_c * o * (1 - o),
        }
        dz = np.zeros_like(z)
        for g in GATES:
            dW[g] += da[g].T @ z
            db[g] += da[g].sum(axis=0)
            dz += da[g] @ W[g]
        dh_next, dc_next = dz[:, :H], dc * f
        dx.append(dz[:, H:])
    return np.stack(dx[::-1]), dh_next, dc_next, dW, db


def stack_forward_backward(x, states, layers, d_out, d_states):
    """Run N layers (each {'W', 'b'}) forward, then back-propagate the given output grads.

    Returns outputs, final states, and per layer (dW, db, dh0, dc0), plus dx.
    """
    caches, finals, inp = [], [], x
    for (h0, c0), layer in zip(states, layers):
        inp, final, cache = layer_forward(inp, h0, c0, layer["W"], layer["b"])
        caches.append(cache)
        finals.append(final)
    out = inp
    grads = [None] * len(layers)
    d_hs = d_out
    for k in reversed(range(len(layers))):
        d_hT, d_cT = d_states[k]
        d_hs, dh0, dc0, dW, db = layer_backward(d_hs, d_hT, d_cT, layers[k]["W"], caches[k])
        grads[k] = (dW, db, dh0, dc0)
    return out, finals, grads, d_hs
