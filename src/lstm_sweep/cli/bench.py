"""`lstm-bench`: how fast the hand-written cells are against torch.nn.LSTM, in one run.

Two measurements, each interleaved (every repeat times every variant once, in turn, so a
machine that speeds up or slows down affects all alike) and summarised by the median:

1. forward + backward of one layer at fixed shapes (B, T, E, H), for `one` and `two`
   (fast and reference) and `torch`, with each one's ratio to `torch` (> 1: faster) and
   its achieved GFLOP/s beside this machine's measured fp32 GEMM GFLOP/s;
2. whole training steps (embedding + stack + decoder + loss + Adam) of the language model
   at the course report's setting, in tokens/s, against `model.cell=torch`, with the
   optimizer lstm-train uses (fused) and torch's default (foreach), and each step's
   fraction of a simple roofline: its GEMM FLOPs at the measured GEMM rate plus the
   optimizer's memory traffic at the measured memory bandwidth;
3. `lstm-train` itself (Lightning, the callbacks, logging) against a bare PyTorch loop over
   the same model, batches and optimizer, in tokens/s of training, in this process;
4. the LSTM variants of Greff et al. (model/zoo.py), forward + backward of one layer on
   their fast path at the PTB-small shape, each against model two's fast path.

Ratios come from one run on one machine; absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import cast

import torch

from lstm_sweep.fields import plain
from lstm_sweep.model.stack import build_stack
from lstm_sweep.model.timing import layer_flops, time_stacks
from lstm_sweep.run.config import compose

# (B, T, E, H): the course setting with the course script's default H, PTB small and
# medium (Zaremba et al.), and the course report's own setting.
DEFAULT_SHAPES = [(128, 5, 256, 128), (20, 35, 200, 200), (20, 35, 650, 650), (128, 5, 256, 256)]
LAYER_VARIANTS = [("one", "fast"), ("two", "fast"), ("one", "reference"), ("two", "reference"), ("torch", "-")]
# (cell, impl, optimizer step): "fused" is lstm-train's default (optim.fused=true)
STEP_VARIANTS = [
    ("one", "fast", "fused"),
    ("two", "fast", "fused"),
    ("one", "reference", "fused"),
    ("two", "reference", "fused"),
    ("torch", "-", "fused"),
    ("one", "fast", "foreach"),
    ("two", "fast", "foreach"),
    ("torch", "-", "foreach"),
]
ADAM_BYTES_PER_PARAMETER = 7 * 4  # fused: read weight, grad, both moments; write weight, both moments
PENN_SMALL_VOCAB = 7611 + 4  # training words + specials, as the report2021 run builds it


def gemm_gflops(repeats: int, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def memory_gbytes_per_sec(repeats: int, n: int = 1 << 26) -> float:
    """Bandwidth of a large copy (read + write), as an optimizer's update streams memory."""
    a, b = torch.ones(n), torch.empty(n)
    for _ in range(2):
        b.copy_(a)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - start)
    return 2 * 4 * n / statistics.median(times) / 1e9


def step_roofline_seconds(
    batch: int, n_step: int, vocab: int, size: int, parameters: int, gemm: float, bandwidth: float
) -> float:
    """The fastest a report2021 training step can be on this machine: its GEMMs (the layer's
    and the decoder's, 3 × forward each) at the GEMM rate, plus the optimizer's memory traffic
    at the copy bandwidth. The rest (embedding, gates, softmax) is taken as free."""
    flops = layer_flops(batch, n_step, size, size) + 3 * 2 * batch * size * vocab
    return flops / (gemm * 1e9) + ADAM_BYTES_PER_PARAMETER * parameters / (bandwidth * 1e9)


def time_layers(shape, repeats: int, warmup: int) -> dict[str, float]:
    E, H = shape[2:]
    torch.manual_seed(0)
    layers = {
        f"{cell}/{impl}": build_stack(cell, E, H, 1, impl=impl if impl != "-" else "fast")
        for cell, impl in LAYER_VARIANTS
    }
    return time_stacks(layers, shape, repeats, warmup)


def time_zoo(shape, repeats: int, warmup: int) -> dict:
    """The variants' fast path against model two's (and nn.LSTM), interleaved at one shape."""
    from lstm_sweep.model.registry import CELLS
    from lstm_sweep.model.zoo import GreffCell

    E, H = shape[2:]
    torch.manual_seed(0)
    variants = [name for name, cell in CELLS.items() if issubclass(cell, GreffCell)]
    stacks = {"two/fast": build_stack("two", E, H, 1), "torch/-": build_stack("torch", E, H, 1)}
    stacks |= {f"{name}/fast": build_stack(name, E, H, 1) for name in variants}
    medians = time_stacks(stacks, shape, repeats, warmup)
    flops = {"two/fast": layer_flops(*shape), "torch/-": layer_flops(*shape)}
    flops |= {f"{name}/fast": cast(type[GreffCell], CELLS[name]).structure().layer_flops(*shape) for name in variants}
    return {
        "shape": dict(zip("BTEH", shape)),
        "variants": {
            name: {
                "seconds": t,
                "ratio_vs_two": medians["two/fast"] / t,
                "ratio_vs_torch": medians["torch/-"] / t,
                "gflops": flops[name] / t / 1e9,
                "flops_vs_two": flops[name] / flops["two/fast"],
            }
            for name, t in medians.items()
        },
    }


def time_training_steps(
    cells, repeats: int, warmup: int, batch: int, n_step: int, vocab: int, size: int, lr: float
) -> dict[str, float]:
    """Seconds per optimizer step of the whole LM (report2021's shapes), per variant."""
    from lstm_sweep.model.lm import LanguageModel

    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, vocab, (batch, n_step), generator=g)
    targets = torch.randint(0, vocab, (batch,), generator=g)
    setups = {}
    for cell, impl, step in cells:
        torch.manual_seed(0)
        model = LanguageModel(
            vocab, size, size, 1, cell=cell, impl=impl if impl != "-" else "fast", decoder_bias_init=1.0
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=step == "fused")
        setups[f"{cell}/{impl} {step}"] = (model, optimizer)

    def once(model, optimizer) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits, _ = model(inputs, last_only=True)
        torch.nn.functional.cross_entropy(logits, targets).backward()
        optimizer.step()
        return time.perf_counter() - start

    for model, optimizer in setups.values():
        for _ in range(warmup):
            once(model, optimizer)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(repeats):
        for name, (model, optimizer) in setups.items():
            times[name].append(once(model, optimizer))
    return {name: statistics.median(t) for name, t in times.items()}


def write_report2021_shaped_corpus(root: Path, train_windows: int, vocab: int = PENN_SMALL_VOCAB - 4) -> Path:
    """A corpus with report2021's vocabulary size and enough training windows: random words,
    Zipf-distributed, in sentences of 20 (what the words are does not change the speed)."""
    g = torch.Generator().manual_seed(0)
    weights = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    ranks = torch.multinomial(weights, vocab, replacement=False, generator=g)  # every word appears
    for split, windows in (("train", train_windows), ("valid", 2000), ("test", 2000)):
        count = max(windows, vocab if split == "train" else 0)
        words = (
            torch.cat([ranks, torch.multinomial(weights, count, replacement=True, generator=g)])
            if split == "train"
            else torch.multinomial(weights, count, replacement=True, generator=g)
        )
        lines = [" ".join(f"w{w}" for w in words[i : i + 20].tolist()) for i in range(0, len(words), 20)]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def time_lstm_train_against_bare_loop(cell: str, batches: int, repeats: int) -> dict[str, float]:
    """Training tokens/s of lstm-train's own path — `train()`: Lightning, the callbacks, the
    logger, checkpoints — and of a bare PyTorch loop over the same model, batches and
    optimizer, interleaved in this process (medians). Both time from the first batch's start
    to the last batch's end, as lstm-train's train/tokens_per_sec does."""
    import logging
    import tempfile

    from lstm_sweep.data.datamodule import LMDataModule
    from lstm_sweep.run.module import LitLanguageModel
    from lstm_sweep.run.optim import configure_optimizers
    from lstm_sweep.run.train import train

    for name in ("lstm_sweep", "pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="lstm-bench-") as tmp:
        corpus = write_report2021_shaped_corpus(Path(tmp), train_windows=batches * 128 + 1000)
        cfg = compose(
            "experiment=report2021",
            f"data.root={corpus}",
            f"model.cell={cell}",
            "trainer.max_epochs=1",
            f"trainer.limit_train_batches={batches}",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "trainer.progress_bar=false",
        )
        config = plain(cfg)

        def bare_loop() -> float:
            torch.use_deterministic_algorithms(cfg.trainer.deterministic)  # as the Trainer sets it
            torch.manual_seed(cfg.seed)
            datamodule = LMDataModule(cfg.data, seed=cfg.seed)
            datamodule.setup()
            assert datamodule.vocab is not None  # setup() built it
            module = LitLanguageModel(config, vocab_size=len(datamodule.vocab))
            model, protocol = module.model.train(), module.protocol
            optimizer = configure_optimizers(model.parameters(), config["optim"], config["schedule"])
            tokens, start = 0, math.nan
            for _, batch in zip(range(batches), datamodule.train_dataloader()):
                if math.isnan(start):  # the first batch's start
                    start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                nll, count, _ = protocol.nll(model, batch, None)
                (nll / count).backward()
                optimizer.step()
                tokens += batch[0].numel()
            return tokens / (time.perf_counter() - start)

        def lstm_train(attempt: int) -> float:
            return train(cfg, Path(tmp) / f"run{attempt}")["train/tokens_per_sec"]

        rates: dict[str, list[float]] = {"bare loop": [], "lstm-train": []}
        for attempt in range(repeats):
            rates["bare loop"].append(bare_loop())
            rates["lstm-train"].append(lstm_train(attempt))
    return {name: statistics.median(r) for name, r in rates.items()}


def parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected B,T,E,H (four integers >= 1)")
    return shape


def report2021_setting() -> dict:
    """Batch, window, sizes and lr of experiments/report2021.yaml, read from the config itself."""
    cfg = compose("experiment=report2021", "data.root=unused")
    return {
        "batch": cfg.data.batch_size,
        "n_step": cfg.data.n_step,
        "size": cfg.model.hidden_size,
        "lr": cfg.optim.lr,
        "vocab": PENN_SMALL_VOCAB,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-bench", description="How fast the hand-written cells are against torch.nn.LSTM, in one run."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--shape", type=parse_shape, action="append", default=[], help="an extra layer shape B,T,E,H (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=25, help="timed repeats per variant (>= 20 advised)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--step-repeats", type=int, default=40, help="timed training steps per variant")
    parser.add_argument("--no-layers", action="store_true", help="skip the one-layer measurement")
    parser.add_argument("--no-steps", action="store_true", help="skip the training-step measurement")
    parser.add_argument("--no-zoo", action="store_true", help="skip the LSTM variants' measurement")
    parser.add_argument(
        "--zoo-shape",
        type=parse_shape,
        default=(20, 35, 200, 200),
        metavar="B,T,E,H",
        help="the LSTM variants' shape (default: PTB small)",
    )
    parser.add_argument(
        "--train-batches",
        type=int,
        default=300,
        help="batches per lstm-train / bare-loop pass (0: skip that measurement)",
    )
    parser.add_argument("--train-repeats", type=int, default=3, help="interleaved lstm-train / bare-loop passes")
    parser.add_argument("--json", type=Path, default=Path("lstm-bench.json"), help="where to write the results")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)

    from lstm_sweep.model.fast import load_kernels

    compiled = load_kernels() is not None  # compile (once) before anything is timed
    threads = torch.get_num_threads()
    peak = gemm_gflops(args.repeats)
    bandwidth = memory_gbytes_per_sec(args.repeats)
    print(
        f"torch {torch.__version__}, {threads} thread(s), fast kernels: "
        f"{'compiled' if compiled else 'pure-PyTorch fallback'}; fp32 GEMM (1024³): {peak:.1f} GFLOP/s; "
        f"memory (copy): {bandwidth:.1f} GB/s"
    )
    results = {
        "torch": torch.__version__,
        "threads": threads,
        "machine": platform.processor() or platform.machine(),
        "compiled_kernels": compiled,
        "gemm_gflops": peak,
        "memory_gbytes_per_sec": bandwidth,
        "repeats": args.repeats,
        "layers": [],
        "steps": None,
        "lstm_train": None,
    }

    if not args.no_layers:
        print("\nforward + backward, one layer (median s; ratio = torch time / this time; GFLOP/s)")
        header = f"{'B,T,E,H':>16} | " + " | ".join(f"{n:>24}" for n in (f"{c}/{i}" for c, i in LAYER_VARIANTS))
        print(header)
    for shape in [] if args.no_layers else [*DEFAULT_SHAPES, *args.shape]:
        medians = time_layers(shape, args.repeats, args.warmup)
        flops = layer_flops(*shape)
        torch_time = medians["torch/-"]
        row = {
            name: {"seconds": t, "ratio_vs_torch": torch_time / t, "gflops": flops / t / 1e9}
            for name, t in medians.items()
        }
        results["layers"].append({"shape": dict(zip("BTEH", shape)), "variants": row})
        cells = [f"{r['seconds'] * 1e3:7.2f}ms {r['ratio_vs_torch']:5.2f}x {r['gflops']:5.1f}" for r in row.values()]
        print(f"{','.join(map(str, shape)):>16} | " + " | ".join(f"{c:>24}" for c in cells))

    if not args.no_zoo:
        results["zoo"] = time_zoo(args.zoo_shape, args.repeats, args.warmup)
        print(
            f"\nthe LSTM variants, forward + backward of one layer at B,T,E,H = {','.join(map(str, args.zoo_shape))} "
            f"(median s; ratio = model two fast's time / this time; GFLOP/s; FLOPs against model two's)"
        )
        for name, r in results["zoo"]["variants"].items():
            print(
                f"{name:>24}: {r['seconds'] * 1e3:7.2f} ms  {r['ratio_vs_two']:5.2f}x model two  "
                f"{r['ratio_vs_torch']:5.2f}x torch  {r['gflops']:6.1f} GFLOP/s  {r['flops_vs_two']:4.2f}x the FLOPs"
            )

    if not args.no_steps:
        setting = report2021_setting()
        medians = time_training_steps(STEP_VARIANTS, args.step_repeats, args.warmup, **setting)
        tokens = setting["batch"] * setting["n_step"]
        size, vocab = setting["size"], setting["vocab"]
        from lstm_sweep.model.lm import LanguageModel

        parameters = sum(p.numel() for p in LanguageModel(vocab, size, size, 1).parameters())
        floor = step_roofline_seconds(setting["batch"], setting["n_step"], vocab, size, parameters, peak, bandwidth)
        results["steps"] = {
            "setting": setting,
            "roofline_seconds": floor,
            "variants": {
                name: {
                    "tokens_per_sec": tokens / t,
                    "ratio_vs_torch": medians[f"torch/- {name.split()[1]}"] / t,
                    "roofline_fraction": floor / t,
                }
                for name, t in medians.items()
            },
        }
        print(
            f"\ntraining step, report2021 LM (B={setting['batch']}, T={setting['n_step']}, "
            f"E=H={size}, V={vocab}, Adam); roofline {floor * 1e3:.1f} ms = {tokens / floor:,.0f} tokens/s"
        )
        for name, r in results["steps"]["variants"].items():
            print(
                f"{name:>24}: {r['tokens_per_sec']:9.0f} tokens/s  {r['ratio_vs_torch']:5.2f}x torch  "
                f"{r['roofline_fraction']:5.1%} of the roofline"
            )

    if args.train_batches > 0:
        rates = time_lstm_train_against_bare_loop("one", args.train_batches, args.train_repeats)
        ratio = rates["lstm-train"] / rates["bare loop"]
        results["lstm_train"] = {
            "cell": "one",
            "batches": args.train_batches,
            "repeats": args.train_repeats,
            "tokens_per_sec": rates,
            "ratio_vs_bare_loop": ratio,
        }
        print(
            f"\nlstm-train against a bare PyTorch loop (report2021 model one, same batches and optimizer, "
            f"{args.train_batches} batches, median of {args.train_repeats}, interleaved)"
        )
        print(f"{'bare loop':>24}: {rates['bare loop']:9.0f} tokens/s")
        print(f"{'lstm-train':>24}: {rates['lstm-train']:9.0f} tokens/s  {ratio:5.2f}x the bare loop")

    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
