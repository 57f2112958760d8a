"""What TensorBoard's HPARAMS page shows of a sweep: the experiment summary, written into the
sweep folder's `.hparams/` as the sweep starts (again, whole, when it is completed later).

Each run records its own row (its settings, run/summary.py); the experiment says what the
columns are. TensorBoard lists the settings marked as differing first, then by name, and
ticks the first five: the swept keys and every setting that differs between the sweep's runs
(a swept config group changes several) are marked, the constant rest is listed below them
unticked once five keys differ (TensorBoard ticks five whatever they are). The metric columns
are the final and best validation perplexity, the test perplexity and loss, the validation
loss and the training perplexity.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from lstm_sweep.files import replacing
from lstm_sweep.naming import short_key

BOARD_FOLDER = ".hparams"  # beside the run folders; lstm-aggregate reads no run from it
EVENT_FILE = "events.out.tfevents.0.sweep"  # TensorBoard reads files named *tfevents*

# (tag, column title): the scalars each run logs.
METRICS = (
    ("val/ppl", "val ppl (last epoch)"),
    ("val/best_ppl", "best val ppl"),
    ("test/ppl", "test ppl"),
    ("test/loss", "test loss"),
    ("val/loss", "val loss (last epoch)"),
    ("train/ppl", "train ppl (last epoch)"),
)


def experiment(swept: list[str], runs: list[dict]):
    """The experiment proto for runs whose flat settings (run/summary.py's hparam_values) are
    `runs`: every key any of them has, marked as differing if swept or not the same in all."""
    from tensorboard.plugins.hparams import api_pb2

    keys = sorted({key for run in runs for key in run})
    infos = []
    for key in keys:
        values = [run[key] for run in runs if key in run]
        info = api_pb2.HParamInfo(
            name=key,
            display_name=key if key not in swept else f"{key} (swept)",
            differs=key in swept or len({repr(v) for v in values}) > 1 or len(values) < len(runs),
        )
        if all(isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_BOOL
            info.domain_discrete.extend(sorted(set(values)))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(sorted({str(v) for v in values}))
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=title) for tag, title in METRICS]
    return api_pb2.Experiment(
        name=f"sweep over {', '.join(short_key(k) for k in swept) or 'one run'}",
        hparam_infos=infos,
        metric_infos=metrics,
    )


def event_file(experiment_proto) -> bytes:
    """An event file holding the experiment summary, as torch's SummaryWriter frames one."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    content = plugin_data_pb2.HParamsPluginData(experiment=experiment_proto)
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=metadata.EXPERIMENT_TAG, metadata=metadata.create_summary_metadata(content))
        ]
    )
    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    now = time.time()
    records.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
    records.write(event_pb2.Event(wall_time=now, step=0, summary=summary).SerializeToString())
    return buffer.getvalue()


def write_experiment(sweep_dir: Path, swept: list[str], runs: list[dict]) -> Path:
    path = sweep_dir / BOARD_FOLDER / EVENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, binary=True) as f:
        f.write(event_file(experiment(swept, runs)))
    return path
