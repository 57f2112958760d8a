"""lstm-bench runs, times every variant against torch, and writes its JSON."""

import json

import pytest

from lstm_sweep.cli.bench import main


@pytest.mark.slow
def test_bench_writes_ratios_for_every_shape_and_variant(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "--repeats",
                "2",
                "--warmup",
                "0",
                "--step-repeats",
                "2",
                "--threads",
                "1",
                "--shape",
                "4,3,5,6",
                "--train-batches",
                "3",
                "--train-repeats",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["gemm_gflops"] > 0
    shapes = [tuple(layer["shape"].values()) for layer in result["layers"]]
    assert shapes == [(128, 5, 256, 128), (20, 35, 200, 200), (20, 35, 650, 650), (128, 5, 256, 256), (4, 3, 5, 6)]
    for layer in result["layers"]:
        assert set(layer["variants"]) == {"one/fast", "two/fast", "one/reference", "two/reference", "torch/-"}
        assert layer["variants"]["torch/-"]["ratio_vs_torch"] == 1.0
    steps = result["steps"]
    assert steps["setting"] == {"batch": 128, "n_step": 5, "size": 256, "lr": 0.0005, "vocab": 7615}
    assert {name.split()[1] for name in steps["variants"]} == {"fused", "foreach"}
    assert all(v["tokens_per_sec"] > 0 and 0 < v["roofline_fraction"] for v in steps["variants"].values())
    assert result["memory_gbytes_per_sec"] > 0 and steps["roofline_seconds"] > 0
    train = result["lstm_train"]
    assert train["tokens_per_sec"]["bare loop"] > 0 and train["tokens_per_sec"]["lstm-train"] > 0
    assert train["ratio_vs_bare_loop"] == train["tokens_per_sec"]["lstm-train"] / train["tokens_per_sec"]["bare loop"]
    assert "ratio = torch time / this time" in capsys.readouterr().out
