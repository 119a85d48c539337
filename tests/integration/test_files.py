"""Data from files, driven through `trainer` as a user would: files written by the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import run_dirs, snapshot
from tests.files_data import AUDIO, IMAGES, write_digit_pngs, write_tone_wavs


def _results(run):
    return yaml.safe_load((run / "results.yaml").read_text())


def _caches(data):
    """The cache folders beside the data (not the lock files of their builds)."""
    return [p for p in (data / ".sweeptrainer-cache").iterdir() if not p.name.startswith(".")]


def _metrics(run):
    return pd.read_csv(run / "metrics.csv").drop(columns="elapsed_s")


def test_image_folder_with_augmentation_and_workers_then_inference(trainer, tmp_path):
    write_digit_pngs(tmp_path / "images", n=200)
    result = trainer(
        *IMAGES, "augmentation=RandomCrop", "num_workers=2", "iterations=2", "learning_rate=0.01"
    )
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    assert "_None_RandomCrop_1_" in run.name  # the augmentation is part of the run name
    assert len(pd.read_csv(run / "metrics.csv")) == 2
    assert _results(run)["test"]["accuracy"] > 0.5
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert list(outputs.columns[:5]) == ["index", "file", "writer", "target", "prediction"]
    assert set(outputs.target) <= {"zero", "one", "two", "three"}

    # new files: the test images copied into another folder, predicted from the run alone
    for name in outputs.file:
        (tmp_path / "new" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "images" / name, tmp_path / "new" / name)
    shutil.rmtree(tmp_path / "images")  # inference needs the run, not the training data
    (tmp_path / "new" / "notes.txt").write_text("not an image")  # said, not silently dropped
    predicted = trainer("inference", str(run), "new", "predictions.csv")
    assert predicted.code == 0, predicted.err
    assert f"wrote {len(outputs)} predictions to predictions.csv; skipped 1 file(s): " in (
        predicted.out
    )
    assert "notes.txt (no loader)" in predicted.out
    predicted = pd.read_csv(tmp_path / "predictions.csv").set_index("file").loc[outputs.file]
    assert (predicted.prediction.to_numpy() == outputs.prediction.to_numpy()).all()
    scores = [c for c in outputs.columns if c.startswith("score_")]
    np.testing.assert_allclose(predicted[scores].to_numpy(), outputs[scores].to_numpy(), atol=1e-6)


def test_workers_do_not_change_a_run_with_random_augmentation(trainer, tmp_path):
    write_digit_pngs(tmp_path / "images", n=80)
    args = (*IMAGES, "augmentation=RandomCrop", "iterations=2", "dataset.check_files=false")
    assert trainer(*args, "num_workers=0", "experiment_id=w0").code == 0
    assert trainer(*args, "num_workers=2", "experiment_id=w2").code == 0
    (w0,), (w2,) = run_dirs(tmp_path, "w0"), run_dirs(tmp_path, "w2")
    pd.testing.assert_frame_equal(_metrics(w0), _metrics(w2), check_exact=True)
    # and the augmentation is really random: without it the run differs
    assert trainer(*IMAGES, "iterations=2", "experiment_id=plain").code == 0
    (plain,) = run_dirs(tmp_path, "plain")
    assert not _metrics(plain).train_loss.equals(_metrics(w0).train_loss)


def test_audio_sweep_builds_the_cache_once_and_reports_per_speaker(trainer, tmp_path):
    write_tone_wavs(tmp_path / "clips", n_per_class=9)
    args = (*AUDIO, "iterations=1", "dataset.stratify=[speaker]")
    result = trainer("-m", "augmentation=None,SpecAugment", *args)
    assert result.code == 0, result.err
    assert result.out.count("preprocessing 27 files once") == 1
    (config,) = _caches(tmp_path / "clips")
    (cache,) = config.iterdir()  # <cache>/<config>/<version>
    built = snapshot(cache)
    assert {"index.json", "values.bin", "info.yaml"} <= set(built)

    again = trainer("-m", "augmentation=None,SpecAugment", *args, "seed=2")  # two new runs
    assert again.code == 0, again.err
    assert "preprocessing" not in again.out and "sweep: 2 runs: 2 trained" in again.out
    assert snapshot(cache) == built  # read, not rebuilt
    assert len(_caches(tmp_path / "clips")) == 1

    run = run_dirs(tmp_path)[0]
    speakers = _results(run)["stratified"]["test"]["speaker"]
    test = pd.read_csv(tmp_path / "clips/test.csv")
    assert set(speakers) == set(test.speaker) and len(speakers) >= 2
    assert {"n", "accuracy", "uar", "f1"} <= set(speakers[test.speaker[0]])
    assert {k: g["n"] for k, g in speakers.items()} == test.speaker.value_counts().to_dict()
    assert trainer("postprocess", "results/default").code == 0
    table = pd.read_csv(tmp_path / "results/default/postprocessing/stratified_aggregated.csv")
    assert set(table[table.split == "test"].group) == set(test.speaker)
    assert set(table.split) == {"dev", "test"}
    assert {"augmentation.id", "accuracy_mean", "accuracy_std", "runs"} <= set(table.columns)


def test_trainer_preprocess_builds_ahead_and_a_changed_file_rebuilds(trainer, tmp_path):
    write_tone_wavs(tmp_path / "clips", n_per_class=4)
    first = trainer("preprocess", *AUDIO)
    assert first.code == 0, first.err
    assert "preprocessing 12 files once" in first.out
    assert "up to date (12 files)" in trainer("preprocess", *AUDIO).out
    assert "nothing to preprocess" in trainer("preprocess", "dataset=Digits").out
    # a changed step: a new cache; a changed file: a new version, only that file computed
    changed = trainer("preprocess", *AUDIO, "dataset.preprocess.1.n_mels=8")
    assert "preprocessing 12 files once" in changed.out
    wav = next((tmp_path / "clips/low").glob("*.wav"))
    wav.write_bytes(wav.read_bytes())  # same bytes, newer time: the file list changed
    again = trainer("preprocess", *AUDIO).out
    assert "preprocessing 1 file once" in again and "computed 1 of 12 files (11 reused)" in again
    configs = _caches(tmp_path / "clips")  # <cache>/<config>/<version>
    assert sorted(len(list(c.iterdir())) for c in configs) == [1, 2]


def test_regression_on_several_targets_from_npy_files(trainer, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "arrays").mkdir()
    rows = []
    for i in range(120):
        x = rng.normal(size=(2, 5)).astype(np.float32)
        np.save(tmp_path / f"arrays/{i}.npy", x)
        rows.append({"file": f"{i}.npy", "a": float(x.sum()) * 3 + 10, "b": float(x[0, 0])})
    pd.DataFrame(rows).to_csv(tmp_path / "arrays/all.csv", index=False)
    result = trainer(
        "dataset=Files", "dataset.path=arrays", "dataset.train=null", "dataset.dev=null",
        "dataset.test=null", "dataset.index=all.csv", "dataset.task=regression",
        "dataset.target=[a,b]", "dataset.scale_target=true", "dataset.metrics=[ccc,mae]",
        "dataset.tracking_metric=ccc", "criterion=MSE", "iterations=15", "learning_rate=0.01",
        "progress_bar=false",
    )  # fmt: skip
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    assert _results(run)["test"]["ccc"] > 0.5
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert {"file", "target_a", "prediction_a", "target_b", "prediction_b"} <= set(outputs)
    assert len(outputs) == 18  # 15 % of 120 by split_seed
    assert outputs.target_a.abs().max() > 5  # in the original units, not standardised


# ----------------------------------------------------------------- bad input


def _no_header(root):
    (root / "images/one/0001.png").write_bytes(b"not a png at all")


def _missing_file(root):
    (root / "images/one/0001.png").unlink()


def _unknown_label(root):
    dev = pd.read_csv(root / "images/dev.csv")
    dev.loc[3, "label"] = "tiger"
    dev.to_csv(root / "images/dev.csv", index=False)


LABEL = "dataset.dev: label 'tiger' in the dev file 'dev.csv' row 4 is not a label of the"
NO_IMPORT = "dataset.transform[0]._target_: cannot import 'torchvision_nope.Resize'"
TOO_SMALL = "model: sweeptrainer.components.models.CNN cannot take a train batch (inputs of shape"
BAD = [
    # (what the test does to the data, overrides, what the message says)
    (None, ["dataset.train=nope.csv"], "dataset.train: file"),
    (None, ["dataset.file_column=path"], "dataset.file_column: column(s) ['path'] not in the"),
    (_missing_file, [], "listed file(s) do not exist under"),
    (_no_header, [], "cannot read 'one/0001.png' (the"),
    (_unknown_label, [], LABEL),
    (None, ["+dataset.transform=[{_target_: torchvision_nope.Resize}]"], NO_IMPORT),
    (None, ["+dataset.transform=[{_target_: torch.flatten, _partial_: true}]"],
     "model: CNN needs image-shaped input"),
    (None, ["augmentation=RandomCrop", "+augmentation.steps.0.size=6"], TOO_SMALL),
]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """40 images and a finished run on them, made once: each bad-input case starts from a
    copy of this folder."""
    from sweeptrainer.cli import main

    root = tmp_path_factory.mktemp("finished")
    write_digit_pngs(root / "images", n=40)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        with pytest.raises(SystemExit) as exit_:
            main([*IMAGES, "iterations=1", "experiment_id=ok"])
    assert exit_.value.code in (0, None)
    return root


@pytest.mark.parametrize(("damage", "overrides", "message"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_input_is_one_clear_error_and_nothing_is_written(
    trainer, tmp_path, finished, damage, overrides, message
):
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    before = snapshot(tmp_path / "results")
    if damage is not None:
        damage(tmp_path)
    result = trainer(*IMAGES, "iterations=1", *overrides)
    assert result.code == 2, result.out + result.err
    assert message in result.err
    assert "Traceback" not in result.out + result.err
    assert snapshot(tmp_path / "results") == before


@pytest.mark.parametrize("check_files", [True, False])
def test_an_unreadable_audio_file_is_named(trainer, tmp_path, check_files):
    """Checked by its header before anything else, or else when it is preprocessed."""
    write_tone_wavs(tmp_path / "clips", n_per_class=3)
    (tmp_path / "clips/mid/s1_1.wav").write_bytes(b"RIFF, but nothing a WAV file holds")
    wav = tmp_path / "clips/low/s2_2.wav"
    wav.write_bytes(wav.read_bytes()[:44])  # a header without a single frame
    result = trainer(*AUDIO, f"dataset.check_files={str(check_files).lower()}", "iterations=1")
    assert result.code == 2
    where = "dataset: cannot read" if check_files else "dataset.preprocess:"
    assert (
        f"{where} 'low/s2_2.wav' (the" in result.err or f"{where} 'mid/s1_1.wav' (the" in result.err
    )
    assert "Traceback" not in result.err
    assert not (tmp_path / "results").exists()
    cache = tmp_path / "clips/.sweeptrainer-cache"
    assert not cache.exists() or not _caches(tmp_path / "clips")  # nothing that looks complete


def test_auto_reads_every_format_libsndfile_lists_aiff_and_mp3_too(trainer, tmp_path):
    """Issue 33: loader: auto takes what the installed libsndfile reads (AIFF, and MP3 where
    it is listed), not only WAV, FLAC and OGG."""
    import soundfile

    root = tmp_path / "clips"
    write_tone_wavs(root, n_per_class=4)
    formats = [".aiff"] + ([".mp3"] if "MP3" in soundfile.available_formats() else [])
    for split in ("train", "dev", "test"):
        table = pd.read_csv(root / f"{split}.csv")
        for i, name in enumerate(table.file):
            suffix = formats[i % len(formats)]
            data, rate = soundfile.read(root / name)
            soundfile.write(root / Path(name).with_suffix(suffix), data, rate)
            (root / name).unlink()
            table.loc[i, "file"] = str(Path(name).with_suffix(suffix))
        table.to_csv(root / f"{split}.csv", index=False)
    result = trainer(*AUDIO, "iterations=1")
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    files = pd.read_csv(run / "outputs/test.csv").file
    assert len(files) >= 2 and {Path(f).suffix for f in files} == set(formats)


def test_validate_opens_the_tables_and_files_and_writes_nothing(trainer, tmp_path):
    """Issue 33: trainer validate reads the index tables and the listed files of a file
    dataset as training would, so a target column or a file that is not there is INVALID,
    naming the table's columns; the preprocessing cache is not built (nothing written)."""
    write_tone_wavs(tmp_path / "clips", n_per_class=4)
    before = snapshot(tmp_path)
    good = trainer("validate", *AUDIO)
    assert good.code == 0 and "1 run(s), 0 invalid" in good.out, good.out
    bad = trainer("validate", *AUDIO, "dataset.target=nope")
    assert bad.code == 2 and "INVALID: dataset.target" in bad.out and "nope" in bad.out
    assert "file, label, speaker" in bad.out  # the table's columns
    (tmp_path / "clips" / pd.read_csv(tmp_path / "clips/dev.csv").file[0]).unlink()
    gone = trainer("validate", *AUDIO)
    assert gone.code == 2 and "INVALID" in gone.out and "dev" in gone.out
    after = snapshot(tmp_path)  # only the file this test removed is gone
    assert after == {k: v for k, v in before.items() if k in after}
    assert len(before) - len(after) == 1 and not (tmp_path / "clips/.sweeptrainer-cache").exists()
