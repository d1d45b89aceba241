"""Reading and writing audio: every format the archives hold, and every way a file can be bad."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callqa.data import audio
from callqa.data.audio import AudioError, AudioInfo, audio_info, read_audio, resample, write_audio

SR = 16000
LEFT_HZ, RIGHT_HZ = 440.0, 1000.0
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg binary not installed")


def stereo(sr: int = SR, seconds: float = 0.5) -> np.ndarray:
    """Left and right differ in pitch and level, so a swap or a mix-up shows."""
    t = np.arange(round(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * LEFT_HZ * t), 0.25 * np.sin(2 * np.pi * RIGHT_HZ * t)]).astype(
        np.float32
    )


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    error = np.sum((got - ref).astype(np.float64) ** 2) + 1e-30  # an exact copy is a very large, finite SQNR
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / error))


def sf_write(path: Path, x: np.ndarray, sr: int = SR, subtype: str | None = None) -> Path:
    """Write with soundfile directly, so that reading is tested independently of write_audio."""
    sf.write(path, x.T, sr, subtype=subtype)
    return path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def amr_file(path: Path, frames: int = 50) -> Path:
    """A valid AMR-NB file (12.2 kbit/s frames, all-zero payload): 160 samples per frame at 8 kHz.

    ffmpeg here can decode AMR but not encode it, so the frames are laid out by hand.
    """
    path.write_bytes(b"#!AMR\n" + (bytes([0x3C]) + bytes(31)) * frames)
    return path


# ---------------------------------------------------------------------------------------- lossless reads


@pytest.mark.parametrize(
    ("ext", "subtype", "min_sqnr_db"),
    [
        ("wav", "PCM_16", 80),
        ("wav", "PCM_24", 120),
        ("wav", "PCM_32", 120),
        ("wav", "FLOAT", 200),
        ("wav", "ULAW", 30),
        ("wav", "ALAW", 30),
        ("flac", "PCM_16", 80),
        ("flac", "PCM_24", 120),
    ],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_reads_pcm_and_g711_close_to_original(
    tmp_path: Path, ext: str, subtype: str, min_sqnr_db: float, channels: int
) -> None:
    x = stereo()[:channels]
    path = sf_write(tmp_path / f"x.{ext}", x, subtype=subtype)
    y, sr = read_audio(path, None)
    assert sr == SR and y.dtype == np.float32 and y.shape == x.shape
    for ch in range(channels):
        assert sqnr_db(x[ch], y[ch]) > min_sqnr_db
    info = audio_info(path)
    assert info == AudioInfo(SR, channels, x.shape[1], x.shape[1] / SR, info.format, subtype)


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
def test_reads_lossy_formats_with_channels_in_order(tmp_path: Path, ext: str) -> None:
    x = stereo()
    y, sr = read_audio(sf_write(tmp_path / f"x.{ext}", x), None)
    assert sr == SR and y.shape[0] == 2
    assert abs(y.shape[1] - x.shape[1]) <= 2 * 1152  # at most a codec frame or two of delay/padding
    assert peak_hz(y[0], SR) == pytest.approx(LEFT_HZ, abs=5)
    assert peak_hz(y[1], SR) == pytest.approx(RIGHT_HZ, abs=5)
    assert np.std(y[0]) > 1.5 * np.std(y[1])  # left is twice as loud


def test_mono_file_is_two_dimensional(tmp_path: Path) -> None:
    y, _ = read_audio(sf_write(tmp_path / "m.wav", stereo()[:1]), None)
    assert y.shape == (1, SR // 2)


# ------------------------------------------------------------------------------------------ ffmpeg route


@needs_ffmpeg
def test_vbr_mp3_without_header_reads_to_the_end(tmp_path: Path) -> None:
    """libsndfile stops such a file after a bitrate estimate (a fraction of it); ffmpeg reads all of it."""
    wav = sf_write(tmp_path / "s.wav", np.tile(stereo(), 6))  # 3 s
    mp3 = tmp_path / "vbr.mp3"
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-q:a", "5", "-write_xing", "0", str(mp3))
    y, sr = read_audio(mp3, None)
    assert sr == SR and y.shape[0] == 2
    assert abs(y.shape[1] - 3 * SR) <= 3 * 1152
    assert audio_info(mp3).frames == y.shape[1]


@needs_ffmpeg
def test_m4a_aac_falls_back_to_ffmpeg(tmp_path: Path) -> None:
    wav = sf_write(tmp_path / "s.wav", stereo(8000, 1.0), 8000)
    m4a = tmp_path / "s.m4a"
    ffmpeg("-i", str(wav), "-c:a", "aac", "-b:a", "48k", str(m4a))
    info = audio_info(m4a)
    assert (info.sample_rate, info.channels, info.format, info.subtype) == (8000, 2, "MP4", "AAC")
    y, _ = read_audio(m4a, 8000)
    assert abs(y.shape[1] - 8000) <= 2048
    assert peak_hz(y[0], 8000) == pytest.approx(LEFT_HZ, abs=10)
    assert peak_hz(y[1], 8000) == pytest.approx(RIGHT_HZ, abs=10)


@needs_ffmpeg
def test_amr_reads_and_slices_exactly(tmp_path: Path) -> None:
    path = amr_file(tmp_path / "call.amr")
    assert audio_info(path) == AudioInfo(8000, 1, 8000, 1.0, "AMR", "AMR_NB")
    full, _ = read_audio(path, None)
    part, _ = read_audio(path, None, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(part, full[:, 2000:6000])


@needs_ffmpeg
def test_mp3_slices_exactly(tmp_path: Path) -> None:
    path = sf_write(tmp_path / "x.mp3", np.tile(stereo(), 2))
    full, _ = read_audio(path, None)
    part, _ = read_audio(path, None, offset=0.3, duration=0.2, channel=1)
    np.testing.assert_array_equal(part, full[1:2, 4800:8000])


def test_without_ffmpeg_amr_is_a_clear_error_and_mp3_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio, "FFMPEG", "no-such-ffmpeg-binary")
    with pytest.raises(AudioError, match="ffmpeg") as err:
        read_audio(amr_file(tmp_path / "call.amr"))
    assert "call.amr" in str(err.value)
    y, _ = read_audio(sf_write(tmp_path / "x.mp3", stereo()), None)
    assert y.shape[0] == 2 and abs(y.shape[1] - SR // 2) <= 2 * 1152


# ------------------------------------------------------------------------------- resampling and selection


def test_resampling_halves_the_samples_and_keeps_the_pitch(tmp_path: Path) -> None:
    path = sf_write(tmp_path / "x.wav", stereo())
    y, sr = read_audio(path)  # default: the telephone rate
    assert sr == 8000 and abs(y.shape[1] - SR // 4) <= 1
    assert peak_hz(y[0], sr) == pytest.approx(LEFT_HZ, abs=5)
    up, sr_up = read_audio(path, 22050)
    assert sr_up == 22050 and abs(up.shape[1] - 22050 // 2) <= 1


def test_channel_picks_and_mono_averages(tmp_path: Path) -> None:
    x = stereo()
    path = sf_write(tmp_path / "x.wav", x, subtype="FLOAT")
    left, _ = read_audio(path, None, channel=0)
    right, _ = read_audio(path, None, channel=1)
    mono, _ = read_audio(path, None, mono=True)
    np.testing.assert_array_equal(left, x[:1])
    np.testing.assert_array_equal(right, x[1:])
    np.testing.assert_allclose(mono, x.mean(axis=0, keepdims=True), atol=1e-7)
    assert mono.shape == (1, x.shape[1])


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_offset_and_duration_read_the_right_samples(tmp_path: Path, ext: str) -> None:
    x = np.tile(stereo(), 2)  # 1 s
    path = sf_write(tmp_path / f"x.{ext}", x)
    full, _ = read_audio(path, None)
    part, _ = read_audio(path, None, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(part, full[:, 4000:12000])  # the seek lands on the same samples
    tail, _ = read_audio(path, None, offset=0.9)
    np.testing.assert_array_equal(tail, full[:, 14400:])
    past_end, _ = read_audio(path, None, offset=0.9, duration=5.0)  # a rounded manifest end runs over
    assert past_end.shape[1] == full.shape[1] - 14400


def test_slice_then_resample_gives_seconds_at_the_target_rate(tmp_path: Path) -> None:
    path = sf_write(tmp_path / "x.wav", np.tile(stereo(), 4))
    y, sr = read_audio(path, 8000, offset=0.5, duration=1.0, channel=0)
    assert sr == 8000 and y.shape == (1, 8000)


def test_resample_accepts_both_layouts() -> None:
    x = stereo()
    both = resample(x, SR, 8000)
    assert both.shape == (2, SR // 4) and both.dtype == np.float32
    np.testing.assert_allclose(resample(x[0], SR, 8000), both[0], atol=1e-6)
    assert resample(x[:, :0], SR, 8000).shape == (2, 0)
    with pytest.raises(ValueError):
        resample(x, 0, 8000)


# -------------------------------------------------------------------------------------------- bad files


def _wav_bytes(tmp_path: Path, subtype: str = "PCM_16") -> bytes:
    return sf_write(tmp_path / "src.wav", stereo(), subtype=subtype).read_bytes()


def _truncated_wav(tmp_path: Path) -> Path:
    data = _wav_bytes(tmp_path)
    (p := tmp_path / "truncated.wav").write_bytes(data[: len(data) - 1000])
    return p


def _truncated_wav_header(tmp_path: Path) -> Path:
    (p := tmp_path / "header.wav").write_bytes(_wav_bytes(tmp_path)[:30])
    return p


def _truncated_flac(tmp_path: Path) -> Path:
    data = sf_write(tmp_path / "src.flac", np.tile(stereo(), 4)).read_bytes()
    (p := tmp_path / "truncated.flac").write_bytes(data[: len(data) // 2])
    return p


def _truncated_mp3(tmp_path: Path) -> Path:
    data = sf_write(tmp_path / "src.mp3", np.tile(stereo(), 4)).read_bytes()
    (p := tmp_path / "truncated.mp3").write_bytes(data[: len(data) // 2])
    return p


def _garbage_after(tmp_path: Path, src: Path, keep: int, name: str) -> Path:
    data = src.read_bytes()
    garbage = np.random.default_rng(0).integers(0, 256, len(data) - keep, dtype=np.uint8).tobytes()
    (p := tmp_path / name).write_bytes(data[:keep] + garbage)
    return p


def _garbage_float_samples(tmp_path: Path) -> Path:
    """A float WAV whose header is intact but whose samples are random bytes (NaN, inf, 1e38 …)."""
    src = tmp_path / "f.wav"
    return _garbage_after(tmp_path, src, src.read_bytes().index(b"data") + 8, "gf.wav")


def _text(tmp_path: Path) -> Path:
    (p := tmp_path / "notes.wav").write_text("这不是音频 — this is a text file\n" * 20, encoding="utf-8")
    return p


def _json(tmp_path: Path) -> Path:
    (p := tmp_path / "calls.mp3").write_text('{"id": "c1", "turns": []}\n', encoding="utf-8")
    return p


def _empty(tmp_path: Path) -> Path:
    (p := tmp_path / "empty.wav").write_bytes(b"")
    return p


def _zero_frames(tmp_path: Path) -> Path:
    return sf_write(tmp_path / "zero.wav", np.zeros((1, 0), np.float32))


#: name -> (maker, whether audio_info sees it too: damage deep inside a FLAC shows only when decoding)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], bool]] = {
    "missing": (lambda d: d / "missing.wav", True),
    "empty": (_empty, True),
    "truncated wav": (_truncated_wav, True),
    "truncated wav header": (_truncated_wav_header, True),
    "truncated flac": (_truncated_flac, False),
    "truncated mp3": (_truncated_mp3, True),
    "garbage after riff header": (lambda d: _garbage_after(d, d.joinpath("s.wav"), 12, "g.wav"), True),
    "garbage float samples": (_garbage_float_samples, False),
    "garbage after flac header": (lambda d: _garbage_after(d, d.joinpath("s.flac"), 100, "g.flac"), False),
    "garbage after ogg header": (lambda d: _garbage_after(d, d.joinpath("s.ogg"), 200, "g.ogg"), True),
    "garbage in mp3": (lambda d: _garbage_after(d, d.joinpath("s.mp3"), 600, "g.mp3"), True),
    "text": (_text, True),
    "json": (_json, True),
    "zero frames": (_zero_frames, True),
    "directory": (lambda d: d, True),
}


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """Healthy files of each format for the damaging makers to start from."""
    x = np.tile(stereo(), 2)
    for name in ("s.wav", "s.flac", "s.ogg", "s.mp3"):
        sf_write(tmp_path / name, x)
    sf_write(tmp_path / "f.wav", x, subtype="FLOAT")
    return tmp_path


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_audio_error_naming_the_file(sources: Path, case: str) -> None:
    maker, info_sees_it = BAD_FILES[case]
    path = maker(sources)
    with pytest.raises(AudioError) as err:
        read_audio(path)
    assert path.name in str(err.value)
    assert err.value.path == str(path) and str(err.value) == f"{path}: {err.value.reason}"
    if info_sees_it:
        with pytest.raises(AudioError):
            audio_info(path)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("truncated wav", "truncated"),
        ("text", "text"),
        ("json", "not an audio file"),
        ("zero frames", "0 frames"),
        ("garbage after riff header", "corrupt"),
        ("garbage float samples", "not finite"),
        ("truncated mp3", "truncated"),
        ("directory", "regular file"),
    ],
)
def test_reasons_say_what_is_wrong(sources: Path, case: str, words: str) -> None:
    with pytest.raises(AudioError, match=words):
        read_audio(BAD_FILES[case][0](sources))


def test_truncation_is_measured_against_the_header(tmp_path: Path) -> None:
    data = _wav_bytes(tmp_path)
    (p := tmp_path / "short.wav").write_bytes(data[:-1])  # one byte short is already truncated
    with pytest.raises(AudioError, match="promises"):
        read_audio(p)


def test_streaming_placeholder_size_is_not_truncation(tmp_path: Path) -> None:
    data = bytearray(_wav_bytes(tmp_path))
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # what a writer to a pipe leaves in the data chunk
    (p := tmp_path / "piped.wav").write_bytes(bytes(data))
    assert read_audio(p, None)[0].shape == (2, SR // 2)


def test_offset_beyond_end_and_missing_channel(tmp_path: Path) -> None:
    path = sf_write(tmp_path / "x.wav", stereo()[:1])
    with pytest.raises(AudioError, match="beyond the end") as err:
        read_audio(path, offset=0.5)
    assert "x.wav" in str(err.value)
    with pytest.raises(AudioError, match="channel 1"):
        read_audio(path, channel=1)


def test_caller_mistakes_are_value_errors(tmp_path: Path) -> None:
    path = sf_write(tmp_path / "x.wav", stereo())
    for kwargs in ({"offset": -1.0}, {"duration": 0.0}, {"mono": True, "channel": 0}, {"sample_rate": 0}):
        with pytest.raises(ValueError):
            read_audio(path, **kwargs)


def test_audio_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(AudioError("/a/b.wav", "truncated")))
    assert (err.path, err.reason, str(err)) == ("/a/b.wav", "truncated", "/a/b.wav: truncated")


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("name", "subtype", "min_sqnr_db"),
    [
        ("x.wav", "PCM_16", 80),
        ("x.wav", "ULAW", 30),
        ("x.wav", "ALAW", 30),
        ("x.wav", "FLOAT", 200),
        ("x.flac", "PCM_16", 80),
    ],
)
def test_write_audio_round_trips(tmp_path: Path, name: str, subtype: str, min_sqnr_db: float) -> None:
    x = stereo()
    write_audio(tmp_path / name, x, SR, subtype=subtype)
    assert sf.info(tmp_path / name).subtype == subtype
    y, _ = read_audio(tmp_path / name, None)
    assert y.shape == x.shape and min(sqnr_db(x[c], y[c]) for c in range(2)) > min_sqnr_db
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_write_audio_ogg_and_mono_vector(tmp_path: Path) -> None:
    write_audio(tmp_path / "x.ogg", stereo()[0], SR)  # default subtype on a lossy container: Vorbis
    info = audio_info(tmp_path / "x.ogg")
    assert (info.channels, info.subtype, info.frames) == (1, "VORBIS", SR // 2)


def test_write_audio_clips_instead_of_wrapping(tmp_path: Path) -> None:
    write_audio(tmp_path / "loud.wav", np.array([1.5, -1.5, 0.5], np.float32), 8000)
    y, _ = read_audio(tmp_path / "loud.wav", None)
    np.testing.assert_allclose(y[0], [1.0, -1.0, 0.5], atol=1e-4)


def test_failed_write_keeps_the_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "call.wav"
    write_audio(target, stereo(), SR)
    before = target.read_bytes()

    def half_write(file: str | Path, data: np.ndarray, *args: object, **kwargs: object) -> None:
        Path(file).write_bytes(b"RIFF partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", half_write)
    with pytest.raises(AudioError, match="disk full") as err:
        write_audio(target, np.zeros((2, 100), np.float32), SR)
    assert "call.wav" in str(err.value)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["call.wav"]


def test_write_audio_rejects_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"x\.aiff"):
        write_audio(tmp_path / "x.aiff", stereo(), SR)
    with pytest.raises(AudioError, match="ULAW"):
        write_audio(tmp_path / "x.flac", stereo(), SR, subtype="ULAW")
    with pytest.raises(ValueError, match="channels"):
        write_audio(tmp_path / "x.wav", stereo().T, SR)  # (n, channels) by mistake
    with pytest.raises(ValueError, match="zero-length"):
        write_audio(tmp_path / "x.wav", np.zeros((1, 0)), SR)
    assert list(tmp_path.iterdir()) == []
