"""Issue 33: image modes and shapes, caught from the files' headers before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_dirs, snapshot
from tests.files_data import AUDIO, split_tables, write_tone_wavs

MODES = ("RGB", "RGBA", "P", "L", "LA", "I;16")
# a tiny CNN on the files as they are (no Resize, no Normalize: default settings)
PLAIN = (
    "dataset=Files", "dataset.path=icons", "model=CNN", "model.channels=[4,8]",
    "batch_size=8", "progress_bar=false", "iterations=1",
)  # fmt: skip


def _icon(mode: str, size: int, seed: int):
    """A ``size`` x ``size`` image in Pillow mode ``mode`` (palette ones with a palette)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(rgb, "RGB")
    if mode == "P":
        return image.quantize(16)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (size, size), dtype=np.uint16))
    return image.convert(mode)


def write_icons(root, modes=MODES, n: int = 36, size: int = 16, odd: dict | None = None):
    """``n`` PNG icons of two classes cycling through ``modes``, with train/dev/test.csv;
    ``odd``: file number -> another size for that file."""
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"icon{i:03d}.png"
        _icon(modes[i % len(modes)], (odd or {}).get(i, size), i).save(root / name)
        rows.append({"file": name, "label": "ab"[i % 2]})
    frame = pd.DataFrame(rows)
    split_tables(frame, root)
    return frame


def test_mixed_image_modes_train_with_default_settings(trainer, tmp_path, caplog):
    """RGB, RGBA, palette, grey, grey+alpha and 16-bit PNGs: every image becomes RGBA (the
    mode that covers them), which is logged once; the run trains."""
    write_icons(tmp_path / "icons")
    with caplog.at_level("INFO", logger="sweeptrainer"):
        result = trainer(*PLAIN)
    assert result.code == 0, result.err
    lines = [r.message for r in caplog.records if r.message.startswith("images:")]
    assert len(lines) == 1 and "converted to RGBA" in lines[0], lines
    assert "I;16, L, LA, P, RGB, RGBA" in lines[0]
    (run,) = run_dirs(tmp_path)
    assert len(pd.read_csv(run / "outputs/test.csv")) > 0


def test_a_palette_image_is_its_colours_and_16_bit_is_scaled(tmp_path):
    """The tensor of a palette PNG equals Pillow's RGB conversion of it (not its indices),
    and a 16-bit grey PNG is scaled by 65535 into every channel."""
    from PIL import Image

    from sweeptrainer.data.files import Files

    root = tmp_path / "icons"
    write_icons(root, modes=("RGB", "P", "I;16"), n=12)
    data = Files(path=str(root), train="train.csv", dev="dev.csv", test="test.csv")
    assert data.image_mode == "RGB" and data.input_shape == (3, 16, 16)
    split = data.train
    seen = set()
    for i, name in enumerate(split.names):
        x = split[i][0].numpy()
        with Image.open(root / name) as image:
            seen.add(image.mode)
            if image.mode == "P":
                expected = np.asarray(image.convert("RGB"), np.float32).transpose(2, 0, 1) / 255
            elif image.mode == "I;16":
                grey = np.asarray(image, np.float32) / 65535
                expected = np.stack([grey] * 3)
            else:
                continue
        np.testing.assert_allclose(x, expected, rtol=0, atol=1e-7)
    assert {"P", "I;16"} <= seen


def test_an_explicit_mode_converts_every_file(tmp_path):
    from sweeptrainer.data.files import Files

    root = tmp_path / "icons"
    write_icons(root, n=12)
    data = Files(str(root), "train.csv", "dev.csv", "test.csv", image_mode="L")
    assert data.image_mode == "L" and data.input_shape == (1, 16, 16)
    assert {tuple(data.train[i][0].shape) for i in range(len(data.train))} == {(1, 16, 16)}


def test_one_odd_size_is_caught_before_anything_is_written(trainer, tmp_path):
    """One 48x48 icon among 32x32 ones: exit 2 before the run folder, naming that file, the
    shapes and Resize (not a failure mid-epoch)."""
    frame = write_icons(tmp_path / "icons", modes=("RGB",), n=36, size=32, odd={7: 48})
    test = pd.read_csv(tmp_path / "icons/test.csv")
    split = "test" if "icon007.png" in set(test.file) else None
    before = snapshot(tmp_path)
    result = trainer(*PLAIN)
    assert result.code == 2, result.out + result.err
    err = result.err
    assert "'icon007.png' (the" in err and "gives (3, 48, 48)" in err and "(3, 32, 32)" in err
    assert "sweeptrainer.data.transforms.Resize" in err and "dataset.batch.collate" in err
    assert "Traceback" not in err and len(frame) == 36
    assert snapshot(tmp_path) == before  # no run folder, no cache
    if split:  # a test file is found as early as a training one
        assert "the test samples differ" in err
    # the fix the message names trains
    resize = "[{_target_: sweeptrainer.data.transforms.Resize, size: 32}]"
    fixed = trainer(*PLAIN, f"dataset.transform={resize}")
    assert fixed.code == 0, fixed.err


def test_clips_of_different_lengths_need_fixed_length_or_pad(trainer, tmp_path):
    """Without FixedLength, clips of different lengths are exit 2 naming FixedLength; with
    dataset.batch.collate: Pad they train."""
    write_tone_wavs(tmp_path / "clips", n_per_class=4)
    free = (*AUDIO, "iterations=1", "dataset.preprocess.0=null")
    result = trainer(*free)
    assert result.code == 2 and "the train samples differ in shape" in result.err, result.err
    assert "sweeptrainer.data.transforms.FixedLength" in result.err
    assert not (tmp_path / "results").exists()
    padded = trainer(*free, "dataset.batch.collate={_target_: sweeptrainer.data.collate.Pad}")
    assert padded.code == 0, padded.err


def _with_rates(root, rates, channels=(1,)):
    """The tone clips rewritten cycling through sample ``rates`` and channel counts."""
    import soundfile

    for i, name in enumerate(sorted(pd.read_csv(root / "train.csv").file)):
        data, _ = soundfile.read(root / name, always_2d=True)
        ch = channels[i % len(channels)]
        soundfile.write(root / name, np.repeat(data[:, :1], ch, axis=1), rates[i % len(rates)])


@pytest.mark.parametrize(
    ("rates", "channels", "overrides", "message"),
    [
        ((8000, 16000), (1,), ["dataset.sample_rate=null"], "dataset.sample_rate: the audio"),
        (
            (8000,),
            (1, 2),
            ["dataset.mono=false"],
            "their channel counts differ: dataset.mono: true",
        ),
    ],
    ids=["rates", "channels"],
)
def test_mixed_audio_is_caught_before_anything_is_written(
    trainer, tmp_path, rates, channels, overrides, message
):
    """Clips of two sample rates without sample_rate would be read as one rate (pitched
    wrong, cut wrong); mono and stereo clips cannot share a batch: each is exit 2 before
    the run folder, naming two files and the key."""
    write_tone_wavs(tmp_path / "clips", n_per_class=4)
    _with_rates(tmp_path / "clips", rates, channels)
    before = snapshot(tmp_path / "results")
    result = trainer(*AUDIO, "iterations=1", *overrides)
    assert result.code == 2, result.out + result.err
    assert message in result.err and result.err.count(".wav' (the") >= 2, result.err
    assert "Traceback" not in result.err
    assert snapshot(tmp_path / "results") == before
    fixed = trainer(*AUDIO, "iterations=1", "dataset.mono=true")  # sample_rate=8000 in AUDIO
    assert fixed.code == 0, fixed.err
