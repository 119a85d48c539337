"""`trainer create`: write a ready-to-run project (conf/ + example code) into a folder.

A project's ``conf/config.yaml`` is the packaged main config (with its comment on
every key) with the template's defaults, its experiment id and a declared sweep, so
it stays in step with the library. Extra files come from ``templates/<name>/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sweeptrainer.config.compose import packaged_conf_dir
from sweeptrainer.errors import ConfigError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _wine_csvs(root: Path) -> list[Path]:
    """data/{train,dev,test}.csv from scikit-learn's wine data, with cultivar names."""
    import numpy as np
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    order = np.random.default_rng(0).permutation(len(frame))
    parts = {"train": order[:124], "dev": order[124:151], "test": order[151:]}
    (root / "data").mkdir(exist_ok=True)
    paths = []
    for split, rows in parts.items():
        paths.append(root / "data" / f"{split}.csv")
        frame.iloc[rows].to_csv(paths[-1], index=False)
    return paths


def _digit_images(root: Path) -> list[Path]:
    from sweeptrainer.example_data import digit_images

    return digit_images(root / "data" / "images")


def _audio_clips(root: Path) -> list[Path]:
    from sweeptrainer.example_data import audio_clips

    return audio_clips(root / "data" / "audio")


@dataclass(frozen=True)
class Template:
    """One quickstart project."""

    name: str
    summary: str
    defaults: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    sweep: dict[str, str] = field(default_factory=dict)
    make_data: Callable[[Path], list[Path]] | None = None

    @property
    def folder(self) -> Path:
        return TEMPLATES_DIR / self.name


TEMPLATES = (
    Template("quickstart", "Digits + a feed-forward network, a declared sweep over learning "
             "rates and seeds", sweep={"learning_rate": "0.01,0.001", "seed": "1,2"}),
    Template("custom-model", "your own model class (with a cb_on_iteration_end hook) and its "
             "conf/model/*.yaml", defaults={"model": "MyModel"},
             sweep={"model.hidden": "32,128", "seed": "1,2"}),
    Template("custom-dataset", "your own dataset over CSV files (written from scikit-learn's "
             "wine data) and its conf/dataset/*.yaml", defaults={"dataset": "WineCSV"},
             sweep={"learning_rate": "0.01,0.001", "seed": "1,2"}, make_data=_wine_csvs),
    Template("regression", "Diabetes regression: MSE, CCC/MAE metrics",
             defaults={"dataset": "Diabetes", "criterion": "MSE"},
             sweep={"learning_rate": "0.003,0.001", "seed": "1,2"}),
    Template("multi-label", "a multi-label set: BCE with logits, macro/micro F1",
             defaults={"dataset": "MultiLabel", "criterion": "BCEWithLogits"},
             keys={"learning_rate": "0.003"},
             sweep={"learning_rate": "0.003,0.001", "seed": "1,2"}),
    Template("images", "image files (scikit-learn's digits written as PNG files at create "
             "time) + a CNN, a sweep over a random-crop augmentation",
             defaults={"dataset": "DigitImages", "model": "CNN"}, keys={"iterations": "10"},
             sweep={"augmentation": "None,RandomCrop", "seed": "1,2"}, make_data=_digit_images),
    Template("audio", "WAV clips (spoken words, or synthesised sounds) as cached log-mel "
             "spectrograms + an audio CNN, a sweep over SpecAugment",
             defaults={"dataset": "Clips", "model": "AudioCNN"},
             keys={"iterations": "15", "learning_rate": "0.003"},
             sweep={"augmentation": "None,SpecAugment", "seed": "1,2"}, make_data=_audio_clips),
)  # fmt: skip


def get_template(name: str) -> Template:
    for template in TEMPLATES:
        if template.name == name:
            return template
    names = ", ".join(t.name for t in TEMPLATES)
    raise ConfigError(f"--template: no template {name!r}; the templates are: {names}")


def project_config(template: Template) -> str:
    """The packaged config.yaml with the template's defaults, keys and declared sweep."""
    text = (packaged_conf_dir() / "config.yaml").read_text(encoding="utf-8")
    for group, option in template.defaults.items():
        text, count = re.subn(rf"(?m)^  - {group}: \S+", f"  - {group}: {option}", text)
        assert count == 1, group
    keys = {"experiment_id": template.name.replace("-", "_"), **template.keys}
    for key, value in keys.items():
        text, count = re.subn(rf"(?m)^{key}: \S+", f"{key}: {value}", text)
        assert count == 1, key
    sweep = "\n".join(f"      {k}: {v}" for k, v in template.sweep.items())
    return (
        f"{text.rstrip()}\n"
        "  sweeper:\n"
        "    params:                  # the sweep `trainer -m` runs: every combination\n"
        f"{sweep}\n"
    )


def create(target: Path, name: str = "quickstart", force: bool = False) -> list[Path]:
    """Write template ``name`` into ``target``; refuse to overwrite files unless ``force``."""
    template = get_template(name)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"DIR: {str(target)!r} is a file; expected a folder (new or existing)")
    for parent in target.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"DIR: {str(parent)!r} is a file; cannot create {str(target)!r}")
    files = {"conf/config.yaml": project_config(template)}
    for path in sorted(template.folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[str(path.relative_to(template.folder))] = path.read_text(encoding="utf-8")
    existing = [rel for rel in files if (target / rel).exists()]
    if template.make_data is not None and (target / "data").exists():
        existing.append("data/")
    if existing and not force:
        raise ConfigError(
            f"{target}: would overwrite {', '.join(existing)}; use --force to overwrite"
        )
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if template.make_data is not None:
        written += template.make_data(target)
    return written
