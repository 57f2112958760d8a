"""What TensorBoard is given: the sweep's HPARAMS columns, a run's tags and layout, and the
runs logged before the tags were renamed (read as before)."""

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from lstm_sweep.analysis.read import read_run
from lstm_sweep.sweep.board import (
    BOARD_FOLDER,
    EVENT_FILE,
    METRICS,
    experiment,
    write_experiment,
)

RUNS = [
    {
        "model.cell": cell,
        "model.num_layers": 1,
        "seed": seed,
        "data.batch_size": 32,
        "model.hidden_size": 64 if cell == "one" else 128,
        "trainer.deterministic": True,
        "data.name": "synthetic",
    }
    for cell in ("one", "two")
    for seed in (0, 1)
]


def test_swept_keys_and_settings_that_differ_are_marked_the_constants_are_not():
    proto = experiment(["model.cell", "seed"], RUNS)
    infos = {info.name: info for info in proto.hparam_infos}
    assert {k for k, info in infos.items() if info.differs} == {"model.cell", "seed", "model.hidden_size"}
    assert (
        infos["model.cell"].display_name == "model.cell (swept)"
        and infos["model.hidden_size"].display_name == "model.hidden_size"
    )
    assert list(infos["model.cell"].domain_discrete) and infos["model.cell"].type == api_pb2.DATA_TYPE_STRING
    assert (infos["seed"].type, infos["seed"].domain_interval.min_value, infos["seed"].domain_interval.max_value) == (
        api_pb2.DATA_TYPE_FLOAT64,
        0,
        1,
    )
    assert infos["trainer.deterministic"].type == api_pb2.DATA_TYPE_BOOL and not infos["trainer.deterministic"].differs
    assert [(m.name.tag, m.display_name) for m in proto.metric_infos] == list(METRICS)


def test_a_key_only_some_runs_have_differs():
    proto = experiment([], [{"a": 1}, {"a": 1, "b": 2}])
    assert {i.name: i.differs for i in proto.hparam_infos} == {"a": False, "b": True}


def test_the_experiment_file_is_one_tensorboard_reads(tmp_path):
    write_experiment(tmp_path, ["seed"], RUNS)
    events = EventAccumulator(str(tmp_path / BOARD_FOLDER))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/experiment"]
    proto = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    assert [i.name for i in proto.hparam_infos] == sorted(RUNS[0])
    assert (tmp_path / BOARD_FOLDER / EVENT_FILE).is_file() and len(list((tmp_path / BOARD_FOLDER).iterdir())) == 1


def test_a_run_logged_with_the_old_tag_names_reads_as_before(tmp_path):
    run = tmp_path / "cell=one,seed=0"
    writer = SummaryWriter(str(run))
    for epoch, ppl in enumerate([300.0, 250.0]):
        writer.add_scalar("val/ppl", ppl, epoch)
        writer.add_scalar("perf/train_tokens_per_sec", 1000.0 * (epoch + 1), epoch)
        writer.add_scalar("lr", 0.01, epoch)
    for tag, value in (
        ("test/ppl", 240.0),
        ("test/loss", math.log(240.0)),
        ("data/oracle_ppl", 150.0),
        ("perf/wall_time_sec", 12.0),
    ):
        writer.add_scalar(tag, value, 2)
    writer.close()
    row, _, _ = read_run(run)
    assert row["test/oracle_ppl"] == 150.0 and row["wall_time_sec"] == 12.0 and row["tokens_per_sec"] == 1500.0
