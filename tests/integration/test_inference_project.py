"""`trainer inference` from the user's project folder takes what a start-up config of the
project builds (functions with `_partial_`, modules through links inside the project, the
user's own dataset classes), while a run folder's config stays untrusted input."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pandas as pd
import yaml

from tests.conftest import run_dirs
from tests.files_data import IMAGES, write_digit_pngs

STEPS = '''
import torch


def scale(x, factor=1.0):
    """A preprocessing step of the user's: a function, bound with _partial_: true."""
    return x * factor


def make_scale(factor=1.0):
    """A factory of the user's, called when it is built."""
    return lambda x: x * factor
'''

OUTSIDE = """
from pathlib import Path


def scale(x, factor=1.0, marker=None):
    if marker:
        Path(marker).touch()
    return x * factor
"""

BLOBS = '''
import numpy as np
import torch
from torch.utils.data import Dataset


class Split(Dataset):
    """Samples one by one, as (features, target): no TensorDataset to slice."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Plain:
    """Two classes of points in 4 dimensions, one apart from the other."""

    task = "classification"

    def __init__(self, n=90, seed=0, transform=None):
        g = torch.Generator().manual_seed(seed)
        self.class_names = ["left", "right"]
        for split, k in (("train", n), ("dev", n // 3), ("test", n // 3)):
            y = torch.randint(0, 2, (k,), generator=g)
            x = torch.randn(k, 4, generator=g) + 3.0 * y[:, None]
            setattr(self, split, Split(x, y))
        self.transform = transform  # a _target_ node nested here comes as a plain mapping
        self.input_shape, self.output_dim = (4,), 2


class Blobs(Plain):
    def load(self, path):
        """One sample's features from a .npy file of the user's own format."""
        return torch.as_tensor(np.load(path), dtype=torch.float32)


class Elsewhere(Plain):
    """Its data is not on this machine; its load needs none of it."""

    def __init__(self, **kwargs):
        raise RuntimeError("the training data is not here")

    @staticmethod
    def load(path):
        return np.load(path)
'''


def _name(tmp_path, stem: str) -> str:
    """A module name of its own per test: Python caches imported modules by name."""
    return f"{stem}_" + re.sub(r"\W", "_", tmp_path.name)


def _edit_config(run, key: str, value) -> None:
    """Set ``key`` (dotted) in the run folder's config.yaml: a run folder edited by hand."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    *path, leaf = key.split(".")
    node = config
    for part in path:
        node = node[part]
    node[leaf] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def test_a_files_run_with_a_partial_function_of_a_linked_project_module(trainer, tmp_path):
    """docs/data.md's `_partial_: true` step, in a package reached through a link inside the
    project: inference builds it as training did and predicts as the run did on its test
    split; a module whose link leads out of the project is refused, and not called."""
    package = _name(tmp_path, "steps")
    (tmp_path / "vendor" / package).mkdir(parents=True)
    (tmp_path / "vendor" / package / "__init__.py").write_text(STEPS)
    (tmp_path / package).symlink_to(tmp_path / "vendor" / package, target_is_directory=True)
    write_digit_pngs(tmp_path / "images", n=60)
    step = f"[{{_target_: {package}.scale, _partial_: true, factor: 0.5}}]"
    trained = trainer(*IMAGES, f"dataset.preprocess={step}", "iterations=1")
    assert trained.code == 0, trained.err
    (run,) = run_dirs(tmp_path)
    outputs = pd.read_csv(run / "outputs/test.csv")
    for name in outputs.file:
        (tmp_path / "new" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "images" / name, tmp_path / "new" / name)
    (tmp_path / "new" / "notes.txt").write_text("no image")
    (tmp_path / "new" / "song.mid").write_bytes(b"MThd")

    predicted = trainer("inference", str(run), "new", "predictions.csv")
    assert predicted.code == 0, predicted.err
    assert f"wrote {len(outputs)} predictions to predictions.csv; skipped 2 file(s): " in (
        predicted.out
    )
    assert "notes.txt (no loader), song.mid (no loader)" in predicted.out
    frame = pd.read_csv(tmp_path / "predictions.csv").set_index("file").loc[outputs.file]
    assert (frame.prediction.to_numpy() == outputs.prediction.to_numpy()).all()

    # a module of the project whose link leads out of it: training would import it, a run
    # folder's config may not name it
    outside = _name(tmp_path, "outside")
    (tmp_path.parent / f"{outside}_real.py").write_text(OUTSIDE)
    (tmp_path / f"{outside}.py").symlink_to(tmp_path.parent / f"{outside}_real.py")
    marker = tmp_path / "MARKER"
    _edit_config(run, "dataset.preprocess", [{"_target_": f"{outside}.scale", "_partial_": True,
                                              "factor": 0.5, "marker": str(marker)}])  # fmt: skip
    refused = trainer("inference", str(run), "new", "again.csv")
    assert refused.code == 2
    assert f"dataset.preprocess[0]._target_: '{outside}.scale' is not a component class" in (
        refused.err
    )
    assert not marker.exists() and not (tmp_path / "again.csv").exists()


def test_a_user_dataset_class_by_split_and_by_its_load_method(trainer, tmp_path):
    """A run of the user's dataset class: NAME:SPLIT builds it from the run's config through
    the project's code; files are read by the class's load(path); a class without one says
    what to give instead of a table dataset's wording."""
    module = _name(tmp_path, "blobs")
    (tmp_path / f"{module}.py").write_text(BLOBS)
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "Blobs.yaml").write_text(
        f"id: Blobs\n_target_: {module}.Blobs\nn: 90\nmetrics: [accuracy]\n"
        "tracking_metric: accuracy\n"
    )
    trained = trainer("dataset=Blobs", "iterations=1", "progress_bar=false")
    assert trained.code == 0, trained.err
    (run,) = run_dirs(tmp_path)
    outputs = pd.read_csv(run / "outputs/test.csv")

    split = trainer("inference", str(run), "Blobs:test", "split.csv")
    assert split.code == 0, split.err
    assert f"wrote {len(outputs)} predictions to split.csv" in split.out
    frame = pd.read_csv(tmp_path / "split.csv")
    assert (frame.prediction == outputs.prediction).all()
    scores = ["score_left", "score_right"]
    np.testing.assert_allclose(frame[scores].to_numpy(), outputs[scores].to_numpy(), atol=1e-6)

    # new files in the class's own format, read by its load(path); one it cannot read
    (tmp_path / "new").mkdir()
    points = {"far_left.npy": [-3.0] * 4, "far_right.npy": [6.0] * 4, "mid.npy": [1.5] * 4}
    for name, x in points.items():
        np.save(tmp_path / "new" / name, np.array(x, dtype=np.float32))
    (tmp_path / "new" / "notes.txt").write_text("not an array")
    files = trainer("inference", str(run), "new", "files.csv")
    assert files.code == 0, files.err
    assert "wrote 3 predictions to files.csv; skipped 1 file(s): notes.txt (" in files.out
    assert f"{module}.Blobs.load failed: " in files.out
    frame = pd.read_csv(tmp_path / "files.csv").set_index("file")
    assert sorted(frame.index) == sorted(points)
    assert frame.loc["far_left.npy", "prediction"] == "left"
    assert frame.loc["far_right.npy", "prediction"] == "right"
    one = trainer("inference", str(run), "new/far_right.npy", "one.csv")
    assert one.code == 0 and "wrote 1 predictions" in one.out, one.err
    # a static load(path) is called on the class: no dataset is built for it
    _edit_config(run, "dataset._target_", f"{module}.Elsewhere")
    static = trainer("inference", str(run), "new", "static.csv")
    assert static.code == 0 and "wrote 3 predictions to static.csv; skipped 1" in static.out
    assert pd.read_csv(tmp_path / "static.csv").equals(pd.read_csv(tmp_path / "files.csv"))

    # the same class without load(path): what to give instead
    _edit_config(run, "dataset._target_", f"{module}.Plain")
    plain = trainer("inference", str(run), "new", "plain.csv")
    assert plain.code == 2
    assert "does not record its feature names" not in plain.err
    assert "Give a split of it as NAME:SPLIT (e.g. Blobs:test), or define a method " in (plain.err)
    assert f"load(self, path) on {module}.Plain" in plain.err
    assert trainer("inference", str(run), "Blobs:test", "plain.csv").code == 0


def test_a_run_folder_still_names_only_what_the_project_builds(trainer, tmp_path):
    """What inference refuses from a run folder's config, before calling (or importing) it:
    a module under the results folder, a function of the project called when built (no
    _partial_, no mark), and a function of elsewhere even with _partial_."""
    module = _name(tmp_path, "blobs")
    (tmp_path / f"{module}.py").write_text(BLOBS + STEPS)
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "Blobs.yaml").write_text(
        f"id: Blobs\n_target_: {module}.Blobs\nmetrics: [accuracy]\ntracking_metric: accuracy\n"
    )
    assert trainer("dataset=Blobs", "iterations=1", "progress_bar=false").code == 0
    (run,) = run_dirs(tmp_path)
    marker = tmp_path / "MARKER"
    evil = run.parent / "evil.py"  # importing it would run it
    evil.write_text(f"open({str(marker)!r}, 'w')\n\n\nclass Data:\n    pass\n")
    cases = {
        "results.default.training.evil.Data": "would be imported from "
        f"{str(evil)!r}, inside the results folder",
        f"{module}.make_scale": f"'{module}.make_scale' is a function of your project that "
        "would be called while the config is built",
    }
    for target, said in cases.items():
        _edit_config(run, "dataset.transform", {"_target_": target})
        result = trainer("inference", str(run), "Blobs:test", "out.csv")
        assert result.code == 2 and said in result.err, (target, result.err)
    assert "@sweeptrainer.builds(object), or as a step or loader with _partial_: true" in (
        result.err
    )
    # a package installed in a virtual environment inside the project is not the project's
    installed = _name(tmp_path, "installed")
    site = tmp_path / ".venv" / "lib" / "python3" / "site-packages"
    (site / installed).mkdir(parents=True)
    (site / installed / "__init__.py").write_text("class Data:\n    pass\n")
    sys.path.insert(0, str(site))  # the fixture restores sys.path
    _edit_config(run, "dataset.transform", {"_target_": f"{installed}.Data"})
    result = trainer("inference", str(run), "Blobs:test", "out.csv")
    assert result.code == 2 and f"'{installed}.Data' is not a component class" in result.err
    # the run folder given through a link (out of the results folder): refused as a
    # resume refuses it, before its config is read
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    shutil.copytree(run, elsewhere / run.name)
    (run.parent / "linked").symlink_to(elsewhere / run.name, target_is_directory=True)
    _edit_config(elsewhere / run.name, "dataset.transform",
                 {"_target_": "results.default.training.evil.Data"})  # fmt: skip
    linked = trainer("inference", str(run.parent / "linked"), "Blobs:test", "out.csv")
    assert linked.code == 2 and "linked' is a symbolic link" in linked.err, linked.err
    touch = {"_target_": "tests.helpers.touch", "_partial_": True, "path": str(marker)}
    _edit_config(run, "dataset.transform", touch)
    result = trainer("inference", str(run), "Blobs:test", "out.csv")
    assert result.code == 2 and "'tests.helpers.touch' is not a component class" in result.err
    _edit_config(run, "dataset.transform", {"_target_": f"{module}.scale", "_partial_": True})
    accepted = trainer("inference", str(run), "Blobs:test", "out.csv")
    assert accepted.code == 0, accepted.err  # the project's own function, bound
    assert not marker.exists()
