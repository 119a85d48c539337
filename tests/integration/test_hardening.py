"""Bad input found by a break-it campaign (issue 16): one clear line naming the key, file or
argument, exit code 2, no traceback, and nothing already in the results folder changed."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import run_dirs, snapshot
from tests.helpers import train_in

TINY = ("iterations=1", "progress_bar=false")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run, trained once for the module (in a folder of its own)."""
    return train_in(tmp_path_factory.mktemp("finished"), *TINY)


@pytest.fixture
def trained(trainer, tmp_path, finished):
    """A copy of that run in this test's folder: the results folder every case below must
    leave as it is."""
    shutil.copytree(finished, tmp_path / "results", symlinks=True)
    return run_dirs(tmp_path)[0]


def _case(name, tmp_path, run):
    """The command line of a case; some need a file or folder made first."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "bad_model.py").write_text(
        "import torch\n\n\nclass Broken(torch.nn.Module):\n"
        "    def __init__(self, **kwargs):\n        super().__init__()\n"
        "        raise ValueError('my bug')\n"
    )
    (tmp_path / "out-folder").mkdir(exist_ok=True)
    (tmp_path / "conf" / "experiment").mkdir(parents=True, exist_ok=True)
    (tmp_path / "conf" / "experiment" / "newline.yaml").write_text(
        '# @package _global_\nexperiment_id: "a\\nb"\n'  # YAML's "\n": a newline
    )
    return {
        "results_dir is a file": (*TINY, "results_dir=a-file"),
        "results_dir under a file": (*TINY, "results_dir=a-file/below"),
        "results_dir cannot be created": (*TINY, "results_dir=/proc/sweeptrainer"),
        "experiment_id with a newline": (*TINY, "+experiment=newline"),
        "experiment_id with a tab": (*TINY, "experiment_id=a\tb"),
        "inference into a folder": ("inference", str(run), "Digits:test", "out-folder"),
        "inference to an unknown extension": ("inference", str(run), "Digits:test", "out.txt"),
        "inference into the run folder": (
            "inference",
            str(run),
            "Digits:test",
            str(run / "outputs" / "test.csv"),
        ),
        "status --watch 0": ("status", str(run.parent.parent), "--watch", "0"),
        "create in a file": ("create", "a-file"),
        "cancel an unknown run": ("cancel", str(run.parent.parent), "no-such-run"),
        "a constructor raising in the user's code": (
            *TINY,
            "model._target_=bad_model.Broken",
            "seed=3",
        ),
        "a scheduler that fails when it steps": (
            *TINY,
            "scheduler=StepLR",
            "scheduler.step_size=0",
        ),
        "a misspelt verb": ("postproces", str(run.parent.parent)),
        "key value for key=value": ("seed", "2"),
    }[name]


EXPECTED = {
    "results_dir is a file": "results_dir: 'a-file' is a file",
    "results_dir under a file": "results_dir: 'a-file' is a file",
    "results_dir cannot be created": "results_dir: cannot create folders in '/proc'",
    "experiment_id with a newline": "experiment_id: expected a folder name (no '/', no control",
    "experiment_id with a tab": "experiment_id: expected a folder name (no '/', no control",
    "inference into a folder": "OUTPUT: 'out-folder' is a folder",
    "inference to an unknown extension": "OUTPUT: 'out.txt' has an unknown extension",
    "inference into the run folder": "is inside the run folder",
    "status --watch 0": "--watch: expected a positive number of seconds, got 0",
    "create in a file": "DIR: 'a-file' is a file",
    "cancel an unknown run": "RUN: no run 'no-such-run'",
    "a constructor raising in the user's code": "ValueError: my bug (at bad_model.py:7)",
    "a scheduler that fails when it steps": "scheduler: torch.optim.lr_scheduler.StepLR fails "
    "at its first step: ZeroDivisionError",
    "a misspelt verb": "unknown command 'postproces' (did you mean 'postprocess'?)",
    "key value for key=value": "overrides are key=value (did you mean seed=2?)",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bad_input_is_one_clear_line_and_changes_nothing(name, trainer, tmp_path, trained):
    args = _case(name, tmp_path, trained)
    before = snapshot(tmp_path / "results")
    result = trainer(*args)
    assert result.code == 2, (result.out, result.err)
    assert EXPECTED[name] in result.err, result.err
    assert "Traceback" not in result.err
    assert snapshot(tmp_path / "results") == before
    assert not list(tmp_path.glob("**/.sweeptrainer-probe-*"))


TABLES = {
    "a train file with a header and no rows": (
        {"train": "a,b,target\n"},
        "dataset.train: 'data/train.csv' has no rows",
    ),
    "a NaN feature": (
        {"train": "a,b,target\n1,2,x\n3,nan,y\n5,6,x\n"},
        "nan in column 'b' of the train file 'data/train.csv' row 2 (the first such",
    ),
    "an infinite feature": (
        {"dev": "a,b,target\ninf,2,x\n"},
        "inf in column 'a' of the dev file 'data/dev.csv' row 1 (the first such",
    ),
    "a label only the test file has": (
        {"test": "a,b,target\n1,2,z\n"},
        "dataset.test: label 'z' in the test file 'data/test.csv' row 1 is not a label of the "
        "training split",
    ),
    "only the target column": (
        {s: "target\nx\ny\n" for s in ("train", "dev", "test")},
        "dataset.features: the train file 'data/train.csv' has no feature columns",
    ),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_bad_tables_are_named_by_file_column_and_row(name, trainer, tmp_path, trained):
    files, expected = TABLES[name]
    (tmp_path / "data").mkdir()
    for split in ("train", "dev", "test"):
        text = files.get(split, "a,b,target\n1,2,x\n3,4,y\n")
        (tmp_path / "data" / f"{split}.csv").write_text(text)
    before = snapshot(tmp_path / "results")
    result = trainer("dataset=Table", *TINY)
    assert result.code == 2, (result.out, result.err)
    assert expected in result.err, result.err
    assert "Traceback" not in result.err
    assert snapshot(tmp_path / "results") == before
