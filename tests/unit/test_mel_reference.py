"""The packaged MelSpectrogram against a reference implementation (issue 33): librosa's, a
test-only dependency ([dev]), with HTK's mel scale, unnormalised filters, a periodic Hann
window and reflection padding, as the packaged one has them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeptrainer.data.transforms import MelSpectrogram

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize(
    "rate, n_fft, hop, n_mels, f_min, f_max",
    [(16000, 400, 160, 64, 0.0, None), (8000, 256, 128, 16, 50.0, 3000.0)],
)
def test_the_mel_spectrogram_equals_librosas_within_1e_4(rate, n_fft, hop, n_mels, f_min, f_max):
    rng = np.random.default_rng(0)
    t = np.arange(rate) / rate
    wave = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.normal(size=rate)).astype(np.float32)
    ours = MelSpectrogram(rate, n_fft, hop, n_mels, f_min, f_max, log=False)
    got = ours(torch.from_numpy(wave)[None])[0].numpy().astype(np.float64)
    want = librosa.feature.melspectrogram(
        y=wave.astype(np.float64), sr=rate, n_fft=n_fft, hop_length=hop, window="hann",
        center=True, pad_mode="reflect", power=2.0, n_mels=n_mels, fmin=f_min,
        fmax=f_max if f_max is not None else rate / 2, htk=True, norm=None,
    )  # fmt: skip
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=0)
