"""The TensorBoard event file: what TensorBoard's own reader makes of it."""

from __future__ import annotations

import os

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.summary_pb2 import Summary

from sweeptrainer.io.tfevents import EventFile


def _point(**values: float) -> Summary:
    return Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])


def _read(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def test_points_are_read_back_by_tensorboard_after_a_flush(tmp_path):
    events = EventFile(tmp_path / "tb")
    assert events.path.is_file()  # there at once: the logger hard-links it
    for step in range(1, 4):
        events.add_summary(_point(**{"train/loss": 1.0 / step, "dev/accuracy": 0.5}), step)
    assert _read(tmp_path / "tb").Tags()["scalars"] == []  # buffered until a flush
    events.flush()
    acc = _read(tmp_path / "tb")
    assert [(e.step, round(e.value, 4)) for e in acc.Scalars("train/loss")] == [
        (1, 1.0), (2, 0.5), (3, 0.3333)
    ]  # fmt: skip
    assert [e.step for e in acc.Scalars("dev/accuracy")] == [1, 2, 3]
    events.close()
    events.close()  # again: nothing
    with pytest.raises(ValueError, match="closed"):
        events.add_summary(_point(x=1.0), 4)


def test_a_resumed_file_hides_the_points_from_its_step_on(tmp_path):
    first = EventFile(tmp_path / "tb")
    for step in range(1, 6):  # a process killed after its state of step 3 wrote up to 5
        first.add_summary(_point(loss=float(step)), step)
    first.close()
    second = EventFile(tmp_path / "tb", purge_step=4)
    assert second.path != first.path
    for step in (4, 5, 6):
        second.add_summary(_point(loss=10.0 * step), step)
    second.close()
    points = [(e.step, e.value) for e in _read(tmp_path / "tb").Scalars("loss")]
    assert points == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0), (6, 60.0)]


def test_a_link_put_in_the_files_place_is_not_written_through(tmp_path):
    events = EventFile(tmp_path / "tb")
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    events.path.unlink()
    os.symlink(outside, events.path)
    events.add_summary(_point(loss=1.0), 1)
    with pytest.raises(OSError):
        events.flush()
    assert outside.read_bytes() == b""


def test_the_checksum_is_tensorboards():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as theirs

    from sweeptrainer.io.tfevents import masked_crc32c

    for data in (b"", b"a", b"123456789", bytes(range(256)) * 3):
        assert masked_crc32c(data) == theirs(data)


def test_hparams_are_read_back_by_the_hparams_plugin(tmp_path):
    from tensorboard.plugins.hparams import metadata

    from sweeptrainer.io.tfevents import hparams_summaries

    events = EventFile(tmp_path / "tb")
    values = {"model.id": "FFNN", "model.dropout": 0.1, "batch_size": 32, "compile": False}
    for summary in hparams_summaries(values, ["test/accuracy", "best/dev_loss"]):
        events.add_summary(summary)
    events.close()
    content = _read(tmp_path / "tb").PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert [i.name for i in experiment.hparam_infos] == list(values)
    assert [m.name.tag for m in experiment.metric_infos] == ["test/accuracy", "best/dev_loss"]
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.id"].string_value == "FFNN"
    assert start.hparams["model.dropout"].number_value == pytest.approx(0.1)
    assert start.hparams["batch_size"].number_value == 32
    assert start.hparams["compile"].bool_value is False
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == 1  # STATUS_SUCCESS
