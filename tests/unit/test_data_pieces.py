"""The pieces of the file data side: loaders, transforms, index tables, models (the cache:
test_cache.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from sweeptrainer.components import models
from sweeptrainer.config.instantiate import check_node, instantiate
from sweeptrainer.data import index as tables
from sweeptrainer.data import loaders, transforms
from sweeptrainer.data.collate import Pad, stack
from sweeptrainer.errors import ConfigError

# ----------------------------------------------------------------- loaders


def test_audio_is_read_resampled_and_mixed_down(tmp_path):
    import soundfile

    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1)
    soundfile.write(tmp_path / "a.flac", stereo.astype(np.float32), 22050)
    raw = loaders.Audio()(tmp_path / "a.flac")
    assert raw.shape == (2, 22050) and raw.dtype == torch.float32
    mono = loaders.Audio(sample_rate=16000, mono=True)(tmp_path / "a.flac")
    assert mono.shape == (1, 16000)
    spectrum = np.abs(np.fft.rfft(mono[0].numpy()))
    assert abs(int(spectrum.argmax()) - 440) <= 1  # still a 440 Hz tone at the new rate
    loaders.Auto().check(tmp_path / "a.flac")
    (tmp_path / "b.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(Exception, match=r"(?i)format|error"):
        loaders.Auto().check(tmp_path / "b.wav")


def test_images_arrays_and_tensors(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 6, 3), 255, np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "grey.jpg")
    auto = loaders.Auto()
    assert auto(tmp_path / "rgb.png").shape == (3, 4, 6) and auto(tmp_path / "rgb.png").max() == 1
    assert auto(tmp_path / "grey.jpg").shape == (1, 4, 6)
    assert loaders.Auto(mode="L")(tmp_path / "rgb.png").shape == (1, 4, 6)
    np.save(tmp_path / "x.npy", np.arange(6).reshape(2, 3))
    assert auto(tmp_path / "x.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        auto(tmp_path / "objects.npy")  # never unpickled
    torch.save(torch.ones(2), tmp_path / "t.pt")
    assert auto(tmp_path / "t.pt").tolist() == [1.0, 1.0]
    torch.save({"not": "a tensor"}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match="expected one tensor"):
        auto(tmp_path / "d.pt")
    with pytest.raises(ValueError, match=r"no loader for '\.txt'"):
        auto(tmp_path / "notes.txt")


def test_an_npy_header_is_read_alone_and_checked_against_the_file(tmp_path):
    """Array.check reads the header through numpy's .npy reader (every version), refuses
    object arrays (never unpickled) and a file shorter than its header says."""
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for version in [(1, 0), (2, 0), (3, 0)]:
        with open(tmp_path / f"v{version[0]}.npy", "wb") as f:
            np.lib.format.write_array(f, array, version=version)
        assert loaders.Array().check(tmp_path / f"v{version[0]}.npy").shape == (2, 3, 4)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        loaders.Array().check(tmp_path / "objects.npy")
    whole = (tmp_path / "v1.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(whole[:-1])
    with pytest.raises(ValueError, match="shorter than its header says"):
        loaders.Array().check(tmp_path / "short.npy")
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(ValueError):
        loaders.Array().check(tmp_path / "text.npy")


# ----------------------------------------------------------------- transforms


def test_mel_spectrogram_puts_a_tone_in_its_band():
    rate = 16000
    t = torch.arange(rate) / rate
    mel = transforms.MelSpectrogram(rate, n_mels=40)
    low = mel(torch.sin(2 * torch.pi * 300 * t)[None])
    high = mel(torch.sin(2 * torch.pi * 4000 * t)[None])
    assert low.shape == (1, 40, 101)
    assert int(low[0].mean(1).argmax()) < int(high[0].mean(1).argmax())
    filters = transforms.mel_filterbank(201, rate, 40, 0.0, 8000.0)
    assert filters.shape == (201, 40) and (filters.sum(0) > 0).all()  # no empty band


def test_fixed_length_masking_crop_and_mixup():
    assert transforms.FixedLength(5)(torch.ones(2, 3)).tolist() == [[1, 1, 1, 0, 0]] * 2
    assert transforms.FixedLength(2, "center")(torch.arange(6.0)).tolist() == [2.0, 3.0]
    torch.manual_seed(0)
    spec = torch.randn(1, 20, 30)
    masked = transforms.TimeMasking(max_width=10, count=3)(spec)
    assert masked.shape == spec.shape and not torch.equal(masked, spec)
    assert (masked == spec.mean()).sum() >= 20  # at least one whole frame set to the mean
    image = torch.arange(16.0).reshape(1, 4, 4)
    shifted = transforms.RandomCrop(padding=1)(image)
    assert shifted.shape == (1, 4, 4)
    _, targets = transforms.MixUp(alpha=1.0, num_classes=3)(
        torch.randn(4, 2), torch.tensor([0, 1, 2, 1])
    )
    assert targets.shape == (4, 3) and torch.allclose(targets.sum(1), torch.ones(4))
    with pytest.raises(ConfigError, match="alpha"):
        transforms.MixUp(alpha=0)


def test_collate_explains_different_shapes_and_pad_fixes_them():
    samples = [(torch.ones(1, 3), torch.tensor(0)), (torch.ones(1, 5), torch.tensor(1))]
    with pytest.raises(ValueError, match=r"differ in shape \(\(1, 3\), \(1, 5\)\).*Pad") as err:
        stack(samples)
    # the keys it names are the real ones (dataset.collate is not a key)
    assert "dataset.batch.collate: {" in str(err.value) and "dataset.image_mode" in str(err.value)
    x, y = Pad()(samples)
    assert x.shape == (2, 1, 5) and x[0, 0].tolist() == [1, 1, 1, 0, 0] and y.tolist() == [0, 1]


# ----------------------------------------------------------------- index tables


def test_stratified_fractions_keep_the_class_proportions():
    frame = pd.DataFrame({"file": [f"{i}.wav" for i in range(100)],
                          "label": ["a"] * 80 + ["b"] * 20})  # fmt: skip
    parts = tables.split_by_fractions(frame, "all.csv", 0, 0.1, 0.2, frame.label, "dataset")
    counts = {s: p.frame.label.value_counts().to_dict() for s, p in parts.items()}
    assert counts == {"train": {"a": 56, "b": 14}, "dev": {"a": 8, "b": 2},
                      "test": {"a": 16, "b": 4}}  # fmt: skip
    again = tables.split_by_fractions(frame, "all.csv", 0, 0.1, 0.2, frame.label, "dataset")
    assert parts["dev"].frame.index.tolist() == again["dev"].frame.index.tolist()  # seeded


def test_split_column_and_label_errors_name_the_row():
    frame = pd.DataFrame({"file": ["a", "b", "c", "d"], "split": ["train", "dev", "test", "val"],
                          "label": [1, 2, 2, 1]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"row 4 has split = 'val'; expected train, dev or test"):
        tables.split_by_column(frame, "split", "all.csv", "dataset")
    frame.loc[3, "split"] = "train"
    parts = tables.split_by_column(frame, "split", "all.csv", "dataset")
    with pytest.raises(ConfigError, match=r"label '2' in 'all.csv' \(split == 'dev'\) row 2"):
        tables.encode_targets(parts, "label", "classification")
    numbers = pd.DataFrame({"file": list("abcd"), "label": [10, 2, 10, 2]})
    parts = {s: tables.Part(numbers, s) for s in tables.SPLITS}
    assert tables.encode_targets(parts, "label", "classification").class_names == ["2", "10"]


# ----------------------------------------------------------------- constructors and models


def resnet_like(*, weights=None, progress=True, **kwargs):
    """The signature of torchvision.models.resnet18: everything else in **kwargs."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(kwargs.get("num_classes", 1000)))


def test_runtime_values_reach_only_declared_names():
    runtime = {"input_shape": (3, 8, 8), "output_dim": 4, "num_classes": 4, "in_chans": 3}
    node = OmegaConf.create({"_target_": "tests.unit.test_data_pieces.resnet_like"})
    model = instantiate(node, "model", nn.Module, **runtime)  # nothing pushed into **kwargs
    assert model[1].out_features == 1000
    node = OmegaConf.create({"_target_": "torch.nn.Conv2d", "out_channels": 2, "kernel_size": 3})
    assert instantiate(node, "model", nn.Module, in_channels=3).in_channels == 3
    needs = OmegaConf.create({"_target_": "torch.nn.Linear", "out_features": 2})
    with pytest.raises(ConfigError, match="needs 'in_features', which neither the config nor"):
        check_node(needs, "model", runtime=("input_shape", "output_dim"))


def test_library_models_are_fitted_to_the_data(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1000))
    models.adapt_input_channels(net, 1)
    models.replace_head(net, 5)
    assert net[0].in_channels == 1 and net(torch.zeros(2, 1, 6, 6)).shape == (2, 5)
    rgb = nn.Conv2d(3, 4, 3)
    torch.save({"model": {"0.weight": rgb.weight.detach(), "0.bias": rgb.bias.detach()}},
               tmp_path / "w.pt")  # fmt: skip
    skipped = models.load_weights(net, str(tmp_path / "w.pt"))
    expected = rgb.weight.detach().mean(1, keepdim=True) * 3
    assert torch.allclose(net[0].weight, expected) and "3.weight" in skipped
    with pytest.raises(ConfigError, match="does not exist"):
        models.load_weights(net, str(tmp_path / "missing.pt"))
    cnn = models.AudioCNN((40, 50), 3, channels=(4, 8))
    assert cnn(torch.zeros(2, 40, 50)).shape == (2, 3) and cnn(torch.zeros(2, 40, 71)).shape == (
        2,
        3,
    )
