"""The config schema: types, ranges and choices checked in one place, one line per fault."""

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException

from helpers import compose_run
from lstm_sweep.cli.overrides import check_overrides
from lstm_sweep.data.config import DataConfig
from lstm_sweep.data.protocols import PROTOCOLS
from lstm_sweep.errors import ConfigError
from lstm_sweep.model.config import ModelConfig
from lstm_sweep.model.registry import names
from lstm_sweep.run import optim
from lstm_sweep.run.config import SCHEDULES, check_config


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.cell=three"], r"model.cell='three' is not a cell: neither a built-in or registered one \(one, two"),
        (["model.init=xavier"], "model.init='xavier' is not one of linear, uniform, normal"),
        (["model.num_layers=0"], "model.num_layers=0 must be an integer >= 1"),
        (["model.hidden_size=-3"], "model.hidden_size=-3 must be an integer >= 1"),
        (["model.dropout=1.0"], r"model.dropout=1.0 must be in \[0, 1\)"),
        (["model.init_range=0"], "model.init_range=0.0 must be a finite number > 0"),
        (
            ["model.tie_weights=true", "model.hidden_size=8"],
            r"model.tie_weights=true needs model.embedding_size == model.hidden_size \(got 64 and 8\)",
        ),
        (["data.batch_size=0"], "data.batch_size=0 must be an integer >= 1"),
        (["data.protocol=bag"], "data.protocol='bag' is not one of window, stream"),
        (
            ["data.split_fractions=[0.5,0.5]"],
            r"data.split_fractions=\[0.5, 0.5\] must be three numbers > 0 that sum to 1",
        ),
        (["data.unk_token='<eos>'"], "data.unk_token='<eos>' collides with a special token"),
        (["data.generator.eos_prob=1"], r"data.generator.eos_prob=1.0 must be in \(0, 1\)"),
        (["data.generator.first_order_weight=0.8"], "first_order_weight and second_order_weight must sum to at most 1"),
        (["data=text"], "data.root is required for data=text"),
        (["optim.lr=nan"], "optim.lr=nan must be a finite number > 0"),
        (["optim=sgd", "optim.momentum=-0.5"], "optim.momentum=-0.5 must be a finite number >= 0"),
        (["optim._target_=torch.nn.Linear"], "optim._target_='torch.nn.Linear' is not a torch.optim optimizer class"),
        (["schedule=plateau", "schedule.factor=2"], r"schedule.factor=2.0 must be in \(0, 1\]"),
        (["trainer.test_checkpoint=first"], "trainer.test_checkpoint='first' is not one of last, best"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be an integer >= 1"),
        (["trainer.limit_train_batches=1.5"], r"trainer.limit_train_batches=1.5 must be null, a number of batches"),
        (["trainer.limit_train_batches=0"], r"trainer.limit_train_batches=0 must be null, a number of batches >= 1"),
        (
            ["trainer.limit_val_batches=0.0"],
            r"trainer.limit_val_batches=0.0 must be null, .* or a fraction in \(0, 1\]",
        ),
        (["seed=-1"], r"seed=-1 must be in \[0, 4294967295\]"),
        (["seed=4294967296"], r"seed=4294967296 must be in \[0, 4294967295\]"),  # numpy's seeds end there
    ],
)
def test_a_value_the_schema_does_not_allow_is_named_with_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_run(*overrides))


@pytest.mark.parametrize(
    "override,key",
    [
        ("seed=abc", "seed"),
        ("model.num_layers=two", "model.num_layers"),
        ("model.colour=red", "model.colour"),
        ("optim.momentum=0.9", "optim.momentum"),
    ],
)
def test_a_wrong_type_or_an_unknown_key_is_refused_as_the_command_line_is_read(override, key):
    with pytest.raises(ConfigCompositionException, match=key.replace(".", r"\.")):
        compose_run(override)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["seed=abc"], "seed=abc: Value 'abc' of type 'str' could not be converted to Integer"),
        (["seed=0,1,abc"], "seed=0,1,abc: Value 'abc' of type 'str' could not be converted to Integer"),
        (
            ["model.hidden_size=1.5"],
            "model.hidden_size=1.5: Value '1.5' of type 'float' could not be converted to Integer",
        ),
        (
            ["model.colour=red"],
            r"model.colour=red: there is no key model.colour \(a new key is added with \+model.colour=…\)",
        ),
        (
            ["optim=sgd", "optim.momentum=fast"],
            "optim.momentum=fast: Value 'fast' of type 'str' could not be converted",
        ),
        (
            ["schedule=plateau", "schedule.factor=x"],
            "schedule.factor=x: Value 'x' of type 'str' could not be converted",
        ),
        (["experiment=../experiments/report2021"], r"experiment=\.\./experiments/report2021: an experiment is a name"),
        (["experiment=report2021,/tmp/x"], r"experiment=report2021,/tmp/x: an experiment is a name"),
        (["seed=["], r"seed=\[: no viable alternative at input '\['"),
        (["seed"], "seed: missing EQUAL at '<EOF>'"),
    ],
)
def test_an_override_hydra_would_refuse_is_named_in_one_line_before_hydra_starts(overrides, message):
    with pytest.raises(ConfigError, match=message) as refused:
        check_overrides(overrides)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=range(3)", "model.cell=one,two", "trainer.limit_train_batches=0.5", "data.root=null"],
        ["optim=sgd", "optim.momentum=0.9"],
        ["data=ptb", "data.generator.vocab_size=10", "reference.x=1"],
        ["+colour=red", "hydra.run.dir=x", "experiment=report2021", "optim.lr=0.1"],
        ["experiment=greff/cifg,null"],  # a name in a folder of experiments stays under multirun/
        ["optim.momentum=0.9"],  # the optimizer is an experiment's choice: Hydra decides
    ],
)
def test_overrides_the_schema_cannot_place_are_left_to_hydra(overrides):
    check_overrides(overrides)
    if "optim.momentum=0.9" in overrides and "optim=sgd" not in overrides:
        with pytest.raises(ConfigCompositionException):  # and Hydra does refuse it, for Adam
            compose_run(*overrides)


def test_every_shipped_configuration_passes_its_own_checks():
    check_config(compose_run())
    for experiment in (p.stem for p in (Path(__file__).parents[1] / "experiments").glob("*.yaml")):
        check_config(compose_run(f"experiment={experiment}", "data.root=somewhere"))
    for corpus in ("text", "penn_small", "ptb", "timemachine"):
        check_config(compose_run(f"data={corpus}", "data.root=somewhere"))


def test_the_registries_offer_exactly_the_schemas_choices():
    choices = {f.name: f.metadata.get("choices") for f in fields(ModelConfig) + fields(DataConfig)}
    assert {"one", "two", "gru", "rnn", "vanilla", "cifg", "fgr"} <= set(names())  # model.cell: registry.py
    assert set(choices["protocol"]) == set(PROTOCOLS)
    assert set(SCHEDULES) == set(optim.SCHEDULES)


def build(*overrides):
    cfg = compose_run(*overrides)
    return optim.configure_optimizers(torch.nn.Linear(2, 2).parameters(), cfg.optim, cfg.schedule)


def test_any_torch_optimizer_is_built_from_its_target():
    assert type(build()) is torch.optim.Adam
    adamw = build("optim=adamw", "optim.lr=0.01")
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["weight_decay"] == 0.01
    assert type(build("optim._target_=torch.optim.NAdam")) is torch.optim.NAdam
    sgd = build("optim=sgd", "optim.momentum=0.9")
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9


@pytest.mark.parametrize("group", ["adam", "adamw", "sgd"])
def test_the_optimizer_step_is_fused_by_default_and_a_key_turns_it_off(group):
    assert build(f"optim={group}").defaults["fused"] is True
    assert not build(f"optim={group}", "optim.fused=false").defaults["fused"]
    assert "fused" not in build("optim._target_=torch.optim.NAdam").defaults  # NAdam has none: ignored


@pytest.mark.parametrize("group, extra", [("adam", []), ("adamw", []), ("sgd", ["optim.momentum=0.9"])])
def test_the_fused_step_agrees_with_torchs_single_tensor_step(group, extra):
    """The oracle: torch's plain per-parameter loop (foreach=False); 20 steps of a small LM."""
    from lstm_sweep.model.lm import LanguageModel

    trajectories = []
    for fused in ("true", "false"):
        torch.manual_seed(0)
        model = LanguageModel(50, 8, 8, 1, cell="one")
        cfg = compose_run(f"optim={group}", f"optim.fused={fused}", "optim.lr=0.01", *extra)
        options = {**cfg.optim, **({} if fused == "true" else {"foreach": False})}
        optimizer = optim.configure_optimizers(model.parameters(), options, cfg.schedule)
        data = torch.Generator().manual_seed(1)
        for _ in range(20):
            inputs, targets = torch.randint(0, 50, (4, 5), generator=data), torch.randint(0, 50, (4,), generator=data)
            optimizer.zero_grad()
            logits, _ = model(inputs, last_only=True)
            torch.nn.functional.cross_entropy(logits, targets).backward()
            optimizer.step()
        trajectories.append([p.detach().clone() for p in model.parameters()])
    for fused, plain in zip(*trajectories):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def test_schedules_are_wired_for_lightning():
    plateau = build("schedule=plateau")["lr_scheduler"]
    assert plateau["monitor"] == "val/ppl" and plateau["scheduler"].factor == 0.25
    exponential = build("schedule=exponential", "schedule.start_epoch=2", "schedule.factor=0.5")
    assert [exponential["lr_scheduler"]["scheduler"].lr_lambdas[0](e) for e in range(4)] == [1, 1, 0.5, 0.25]


def test_an_experiment_is_selected_without_a_plus_and_applied_last():
    cfg = compose_run("experiment=ptb_zaremba_small", "data.root=ptb")
    assert (cfg.data.name, cfg.data.bptt, cfg.data.batch_size, cfg.data.eval_batch_size) == ("ptb", 20, 20, 10)
    assert (cfg.optim._target_, cfg.optim.lr, cfg.schedule.name, cfg.schedule.factor) == (
        "torch.optim.SGD",
        20.0,
        "exponential",
        0.5,
    )


@pytest.mark.slow
def test_the_older_plus_spelling_of_an_experiment_still_works(tmp_path):
    cli = str(Path(sys.executable).parent / "lstm-train")
    proc = subprocess.run(
        [cli, "+experiment=report2021", "data.root=x", "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "unk_token: <unk_word>" in proc.stdout


def test_the_language_model_takes_exactly_the_model_keys():
    """LanguageModel(vocab_size, **model): a key added to ModelConfig is an argument, or this fails."""
    import inspect

    from lstm_sweep.model.lm import LanguageModel

    arguments = set(inspect.signature(LanguageModel).parameters) - {"vocab_size"}
    assert arguments == {f.name for f in fields(ModelConfig)}


def test_the_trainer_keys_marked_for_lightning_are_its_trainers_arguments():
    import inspect

    import pytorch_lightning as pl

    from lstm_sweep.run.config import TrainerConfig, lightning_arguments

    passed = lightning_arguments(compose_run().trainer)
    assert passed and set(passed) <= set(inspect.signature(pl.Trainer).parameters)
    assert set(passed) == {f.name for f in fields(TrainerConfig) if f.metadata.get("lightning")}
    assert passed["max_epochs"] == 2 and passed["log_every_n_steps"] == 20
