"""The telephone channel, measured: spectrum, SNR, codec error, packet loss, channel separation."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from callqa.data.telephony import (
    TelephoneChannel,
    alaw_decode,
    alaw_encode,
    gilbert_losses,
    mulaw_decode,
    mulaw_encode,
)

SR = 8000
Codec = Callable[[np.ndarray], np.ndarray]


def tone(seconds: float, hz: float = 1000.0, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean power spectral density in [lo, hi] Hz, in dB."""
    f, psd = signal.welch(x, fs=SR, nperseg=512)
    return float(10 * np.log10(psd[(f >= lo) & (f <= hi)].mean()))


def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, np.float64) ** 2))


def measured_snr_db(y: np.ndarray, active: slice, silent: slice) -> float:
    """Tone power (active part minus the noise under it) against the noise in the silent part."""
    noise = power(y[silent])
    return 10 * np.log10((power(y[active]) - noise) / noise)


# ------------------------------------------------------------------------------------------------ spectrum


@pytest.mark.parametrize("codec", ["ulaw", "alaw", "none"])
def test_white_noise_comes_out_band_limited(codec: str) -> None:
    x = 0.1 * np.random.default_rng(0).standard_normal(4 * SR)
    y = TelephoneChannel(codec=codec)(x, SR, np.random.default_rng(1))
    passband = band_db(y, 300, 3400)
    assert passband - band_db(y, 0, 200) >= 20
    assert passband - band_db(y, 3600, 4000) >= 20


def test_output_is_8khz_float32_in_the_input_layout() -> None:
    channel = TelephoneChannel()
    mono = channel(tone(2.0, sr=22050), 22050, np.random.default_rng(0))
    assert mono.dtype == np.float32 and mono.ndim == 1 and abs(len(mono) - 2 * SR) <= 1
    both = channel(np.stack([tone(1.0, sr=22050)] * 2), 22050, np.random.default_rng(0))
    assert both.shape[0] == 2 and abs(both.shape[1] - SR) <= 1
    assert np.abs(both).max() <= 1.0


def test_loud_input_is_clipped_to_full_scale() -> None:
    y = TelephoneChannel(codec="none")(tone(1.0, amp=3.0), SR, np.random.default_rng(0))
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.99


# ------------------------------------------------------------------------------------------------------ SNR


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
@pytest.mark.parametrize("codec", ["none", "ulaw"])
def test_noise_sits_at_the_requested_snr(snr_db: float, codec: str) -> None:
    x = np.concatenate([tone(1.0), np.zeros(SR, np.float32)])
    y = TelephoneChannel(codec=codec, snr_db=snr_db)(x, SR, np.random.default_rng(2))
    got = measured_snr_db(y, slice(400, SR - 400), slice(SR + 400, 2 * SR - 400))
    assert got == pytest.approx(snr_db, abs=2.0)


def test_snr_is_against_active_speech_not_the_average() -> None:
    """A channel silent 90 % of the time still gets noise relative to its voice, not to its mean power."""
    x = np.concatenate([tone(0.5), np.zeros(9 * SR // 2, np.float32)])
    y = TelephoneChannel(codec="none", snr_db=20.0)(x, SR, np.random.default_rng(3))
    got = measured_snr_db(y, slice(400, SR // 2 - 400), slice(SR, 5 * SR - 400))
    assert got == pytest.approx(20.0, abs=2.0)


def test_no_noise_when_snr_is_none() -> None:
    y = TelephoneChannel(codec="none", snr_db=None)(np.zeros(SR, np.float32), SR, np.random.default_rng(0))
    assert not y.any()


# --------------------------------------------------------------------------------------------------- G.711


@pytest.mark.parametrize(("encode", "decode"), [(mulaw_encode, mulaw_decode), (alaw_encode, alaw_decode)])
@pytest.mark.parametrize("amp", [0.9, 0.1, 0.01])
def test_g711_round_trip_error_is_small_relative_to_level(encode: Codec, decode: Codec, amp: float) -> None:
    x = tone(1.0, hz=997.0, amp=amp)
    codes = encode(x)
    assert codes.dtype == np.uint8 and codes.shape == x.shape
    y = decode(codes)
    sqnr = 10 * np.log10(power(x) / power(y - x))
    assert sqnr > 30  # G.711 keeps about 38 dB over a wide range of levels: that is what companding buys


@pytest.mark.parametrize(
    ("encode", "decode", "subtype"),
    [(mulaw_encode, mulaw_decode, "ULAW"), (alaw_encode, alaw_decode, "ALAW")],
)
def test_g711_codes_mean_what_libsndfile_says(encode: Codec, decode: Codec, subtype: str) -> None:
    """Bit-compatible with G.711 WAV files: the same byte decodes to the same level in both."""
    codes = np.arange(256, dtype=np.uint8)
    ref, _ = sf.read(
        io.BytesIO(codes.tobytes()), samplerate=SR, channels=1, format="RAW", subtype=subtype, dtype="float32"
    )
    np.testing.assert_array_equal(decode(codes), ref)
    levels = decode(codes)
    assert np.array_equal(decode(encode(levels)), levels)  # every level is a fixed point of the round trip
    full = encode(np.linspace(-1, 1, 100_001))
    assert full.min() >= 0 and full.max() <= 255 and len(np.unique(full)) >= 254  # ±0 may share a level


def test_continuous_mu_law_for_other_mu() -> None:
    x = np.linspace(-1, 1, 1001)
    y = mulaw_decode(mulaw_encode(x, mu=15), mu=15)
    assert np.abs(y - x).max() < 0.05 and np.all(np.diff(y) >= 0)


# --------------------------------------------------------------------------------------------- packet loss


@pytest.mark.parametrize("loss", [0.05, 0.2])
def test_packet_loss_zeroes_about_the_requested_fraction_of_frames(loss: float) -> None:
    x = 0.1 * np.random.default_rng(0).standard_normal(60 * SR).astype(np.float32)
    y = TelephoneChannel(packet_loss=loss)(x, SR, np.random.default_rng(4))
    frames = y.reshape(-1, 160)
    dropped = ~frames.any(axis=1)
    assert dropped.mean() == pytest.approx(loss, abs=0.03)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], dropped.astype(int), [0]]))))[::2]
    assert 1.3 < runs.mean() < 3.5  # bursts of about two packets, not isolated drops


def test_gilbert_losses_long_run_rate() -> None:
    lost = gilbert_losses(200_000, 0.3, 4.0, np.random.default_rng(0))
    assert lost.mean() == pytest.approx(0.3, abs=0.01)
    assert not gilbert_losses(100, 0.0, 2.0, np.random.default_rng(0)).any()


# ---------------------------------------------------------------------------------------- determinism etc.


def test_same_seed_same_output_and_different_seed_differs() -> None:
    channel = TelephoneChannel(packet_loss=0.1)
    x = np.stack([tone(1.0, sr=16000), tone(1.0, 500.0, sr=16000)])
    a = channel(x, 16000, np.random.default_rng(7))
    b = channel(x, 16000, np.random.default_rng(7))
    c = channel(x, 16000, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stereo_channels_stay_separate() -> None:
    left = np.concatenate([tone(1.0), np.zeros(SR, np.float32)])
    x = np.stack([left, np.zeros_like(left)])
    clean = TelephoneChannel(codec="none", snr_db=None)(x, SR, np.random.default_rng(0))
    assert power(clean[0]) > 0.01 and not clean[1].any()  # no crosstalk at all without noise

    y = TelephoneChannel(snr_db=25.0)(x, SR, np.random.default_rng(0))
    right_db = 10 * np.log10(power(y[1]))
    assert right_db == pytest.approx(10 * np.log10(power(y[0, 400 : SR - 400])) - 25.0, abs=2.0)
    f, psd = signal.welch(y[1], fs=SR, nperseg=512)
    in_band = psd[(f > 400) & (f < 3000)]
    assert psd[np.argmin(np.abs(f - 1000))] < 3 * np.median(in_band)  # the left's tone is not in the right


def test_invalid_settings_are_rejected() -> None:
    for kwargs in ({"high_hz": 4000.0}, {"low_hz": 3500.0}, {"packet_loss": 1.0}, {"codec": "gsm"}):
        with pytest.raises(ValueError):
            TelephoneChannel(**kwargs)


def test_short_and_empty_inputs() -> None:
    channel = TelephoneChannel(packet_loss=0.5)
    assert channel(np.zeros(5, np.float32), SR, np.random.default_rng(0)).shape == (5,)
    assert channel(np.zeros((2, 0), np.float32), SR, np.random.default_rng(0)).shape == (2, 0)
