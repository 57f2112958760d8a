"""Forward + backward of layer stacks, timed interleaved: every repeat times every stack
once, in turn, so a machine that speeds up or slows down affects all alike; the median of
each is what lstm-bench and lstm-check-cell report."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def time_stacks(
    stacks: dict[str, nn.Module], shape: tuple[int, int, int, int], repeats: int, warmup: int
) -> dict[str, float]:
    """Median seconds of one forward + backward of each stack at (B, T, E, H)."""
    B, T, E, H = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, E, generator=generator, requires_grad=True)
    grad = torch.randn(T, B, H, generator=generator)

    def once(stack: nn.Module) -> float:
        start = time.perf_counter()
        out, _ = stack(x)
        out.backward(grad)
        return time.perf_counter() - start

    for stack in stacks.values():
        for _ in range(warmup):
            once(stack)
    times: dict[str, list[float]] = {name: [] for name in stacks}
    for _ in range(repeats):
        for name, stack in stacks.items():
            times[name].append(once(stack))
    return {name: statistics.median(t) for name, t in times.items()}


def layer_flops(B: int, T: int, E: int, H: int, gates: int = 4) -> int:
    """GEMM FLOPs of forward + backward of an LSTM layer with `gates` gate blocks:
    3 × (2·T·B·gates·H·(E + H)) (forward, data and weight gradients)."""
    return 3 * 2 * T * B * gates * H * (E + H)
