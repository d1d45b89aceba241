"""Reading and writing audio at the edge of the project.

Everything inside the project works on float32 arrays shaped ``(channels, samples)`` at one known rate;
this module is the only place that knows about files. Recordings arrive from many archives (WAV with
PCM or G.711, FLAC, OGG, MP3, AMR, M4A), some of them damaged, and a batch must be able to report a bad
file by name and go on, so every failure here is an :class:`AudioError` naming the file and the reason.

Two decoders are used:

* **libsndfile** (through soundfile) for WAV, FLAC, OGG and the other formats it knows: it can seek, so an
  utterance in the middle of a long call is read without decoding the rest.
* **ffmpeg** (the binary, through a pipe) for what libsndfile cannot open (AMR, M4A/AAC, WAV with exotic
  codecs) and for MP3 always: libsndfile 1.2 takes an MP3's length from the Xing header or, without
  one, from the first frame's bitrate, and silently returns a fraction of a VBR file that lacks the
  header (seen: 7,457 of 49,536 frames). ffmpeg decodes to the real end.

Damage is detected rather than papered over: libsndfile quietly shortens a WAV whose header promises more
data than the file holds, so the RIFF chunks are checked against the file size first; a decoder that
delivers fewer frames than the header announced, or ffmpeg reporting any decoding error, is also an error.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from callqa.data.constants import SAMPLE_RATE
from callqa.data.files import atomic_path

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Names of the ffmpeg binaries; module attributes so that a deployment (or a test) can point elsewhere.
FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

#: WAV codec tags libsndfile decodes itself (PCM, IEEE float, A-law, μ-law, and the extensible wrapper
#: around them): when it rejects such a file, the file is damaged, and ffmpeg must not be asked to guess.
_NATIVE_WAV_TAGS = frozenset({0x0001, 0x0003, 0x0006, 0x0007})
#: Data-chunk sizes that streaming writers put in the header when they do not know the length yet.
_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF})
#: Float samples beyond this magnitude are not audio but garbage bytes read as floats.
_MAX_FLOAT_MAGNITUDE = 1e3
#: Leading bytes of formats we know to be audio; a file starting otherwise may be text.
_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"#!AMR", b"FORM", b".snd", b"\xff")
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
#: Lossy containers have no PCM subtype: the default "PCM_16" there means "the container's own codec".
_LOSSY_DEFAULT_SUBTYPE = {"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III"})
_MAX_CHANNELS = 32
#: ffprobe's warning when an MP3's Xing/Info header announces more than the file holds.
_MP3_SHORTER_THAN_HEADER = b"filesize and duration do not match"
#: The "[mp3 @ 0x55d2…] " prefix of ffmpeg's log lines: noise in an error message.
_FFMPEG_FORMAT_NAMES = {"mov": "MP4"}  # ffmpeg calls its whole MP4/M4A/3GP family "mov,mp4,m4a,…"
_FFMPEG_CONTEXT = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
_HEAD_BYTES = 4096


class AudioError(ValueError):
    """A file that cannot be used as audio; ``str(e)`` names the file so that a batch log explains itself."""

    def __init__(self, path: PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[AudioError], tuple[str, str]]:
        # Worker processes (batch scoring, data loaders) pickle exceptions; keep both fields on the way back.
        return type(self), (self.path, self.reason)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as its decoder sees it (``frames`` at the native ``sample_rate``)."""

    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str


@dataclass(frozen=True)
class _Source:
    """A file that passed the checks and the decoder that reads it (``frames`` None: ffmpeg must count)."""

    path: Path
    backend: Literal["soundfile", "ffmpeg"]
    sample_rate: int
    channels: int
    frames: int | None
    format: str
    subtype: str


# ----------------------------------------------------------------------------------------------- public API


def audio_info(path: PathLike) -> AudioInfo:
    """Describe a file after the same checks as :func:`read_audio`, so a file that passes here also reads.

    For files decoded by ffmpeg (MP3, AMR, M4A …) the frame count comes from decoding the whole stream,
    because container durations of those formats are estimates.
    """
    src = _open(path)
    frames = src.frames if src.frames is not None else _ffmpeg_count_frames(src)
    if frames == 0:
        raise AudioError(path, "no audio: the file holds 0 frames")
    return AudioInfo(src.sample_rate, src.channels, frames, frames / src.sample_rate, src.format, src.subtype)


def read_audio(
    path: PathLike,
    sample_rate: int | None = SAMPLE_RATE,
    *,
    mono: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
    channel: int | None = None,
) -> tuple[np.ndarray, int]:
    """Read a file (or a stretch of it) as float32 ``(channels, samples)`` and the rate it is at.

    The slice is taken at the native rate and resampled once, so ``offset``/``duration`` mean the same
    seconds whatever the target rate. A stretch running past the end returns what is there (manifest
    durations are rounded); an ``offset`` at or past the end is an error.
    """
    _check_read_args(sample_rate, mono, offset, duration, channel)
    src = _open(path)
    if channel is not None and channel >= src.channels:
        raise AudioError(path, f"has {src.channels} channel(s); channel {channel} was requested")
    start = round(offset * src.sample_rate)
    count = None if duration is None else round(duration * src.sample_rate)
    reader = _read_soundfile if src.backend == "soundfile" else _read_ffmpeg
    audio = reader(src, start, count, offset)
    _check_finite(src.path, audio)
    if channel is not None:
        audio = audio[channel : channel + 1]
    elif mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if sample_rate is None or sample_rate == src.sample_rate:
        return np.ascontiguousarray(audio, dtype=np.float32), src.sample_rate
    return resample(audio, src.sample_rate, sample_rate), sample_rate


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality); ``(n,)`` and ``(channels, n)`` both work.

    Always float32, because that is what every consumer in the project works on.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected (n,) or (channels, n) audio, got shape {x.shape}")
    if orig_sr == target_sr:
        return x.copy()
    if x.shape[-1] == 0:
        return np.zeros((*x.shape[:-1], 0), dtype=np.float32)
    # soxr wants (frames, channels); our layout is (channels, frames).
    y = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def write_audio(path: PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``(channels, n)`` or ``(n,)`` audio atomically; the format follows the extension.

    Integer and G.711 subtypes clip to [-1, 1] first (libsndfile would otherwise wrap loud samples
    around to the opposite sign). On ``.ogg``/``.mp3`` the default ``"PCM_16"`` means the container's own
    codec (Vorbis, MPEG layer III). Zero-length audio is refused, since :func:`read_audio` rejects it.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(
            path,
            f"cannot write {path.suffix or 'files without an extension'!r}; "
            f"use one of {', '.join(_WRITE_FORMATS)}",
        )
    subtype = _LOSSY_DEFAULT_SUBTYPE.get(fmt, "PCM_16") if subtype.upper() == "PCM_16" else subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(
            path,
            f"subtype {subtype} is not available for {fmt} "
            f"(available: {', '.join(sf.available_subtypes(fmt))})",
        )
    data = _frames_for_writing(path, audio, sample_rate, clip=subtype not in _FLOAT_SUBTYPES)
    try:
        with atomic_path(path) as tmp:
            sf.write(tmp, data, sample_rate, subtype=subtype, format=fmt)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioError(path, f"cannot write: {exc}") from exc


# -------------------------------------------------------------------------------------- checks and routing


def _check_read_args(
    sample_rate: int | None, mono: bool, offset: float, duration: float | None, channel: int | None
) -> None:
    """Caller mistakes are plain ValueErrors: they are not the file's fault."""
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive or None, got {sample_rate}")
    if not np.isfinite(offset) or offset < 0:
        raise ValueError(f"offset must be a finite number >= 0, got {offset}")
    if duration is not None and (not np.isfinite(duration) or duration <= 0):
        raise ValueError(f"duration must be a finite number > 0 or None, got {duration}")
    if channel is not None and (mono or channel < 0):
        raise ValueError(f"channel must be >= 0 and cannot be combined with mono, got {channel=} {mono=}")


def _open(path: PathLike) -> _Source:
    """Check the file and pick its decoder; every way this can fail ends in an AudioError."""
    p = Path(path)
    head, size = _read_head(p)
    wav_tag = _check_riff(p, size) if head[:4] in (b"RIFF", b"RF64") else None
    if _looks_like_mp3(head) and _have_ffmpeg():
        return _probe_ffmpeg(p, head)  # skip libsndfile, whose mpg123 chatters on stderr about damage
    try:
        info = sf.info(os.fspath(p))
    except (sf.SoundFileError, RuntimeError) as exc:
        return _open_unreadable(p, head, wav_tag, str(exc))
    if info.format == "MP3":
        if _have_ffmpeg():
            return _probe_ffmpeg(p, head)
        log.warning("%s: ffmpeg not found; reading MP3 with libsndfile, which may cut VBR files short", p)
    if info.frames == 0:
        raise AudioError(p, "no audio: the file holds 0 frames")
    return _Source(p, "soundfile", info.samplerate, info.channels, info.frames, info.format, info.subtype)


def _read_head(path: Path) -> tuple[bytes, int]:
    """The first bytes and the size, turning the file-system failures into reasons a person understands."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot open: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return head, size


def _open_unreadable(path: Path, head: bytes, wav_tag: int | None, message: str) -> _Source:
    """libsndfile refused the file: decide whether it is damaged, not audio, or a job for ffmpeg."""
    reason = _strip_path(message, path)
    if _looks_like_text(head):
        raise AudioError(path, "not an audio file (it looks like text)")
    if "malformed" in reason.lower() or head.startswith(b"fLaC") or wav_tag in _NATIVE_WAV_TAGS:
        # libsndfile knows this format; its rejection means damage, and ffmpeg would decode what it can.
        raise AudioError(path, f"corrupt or truncated audio: {reason}")
    if not _have_ffmpeg():
        raise AudioError(path, f"libsndfile cannot read it ({reason}) and ffmpeg is not installed to try")
    log.debug("%s: libsndfile said %r; decoding with ffmpeg", path, reason)
    return _probe_ffmpeg(path, head)


def _check_riff(path: Path, size: int) -> int:
    """Walk the RIFF chunks; raise if the data chunk promises more bytes than the file holds.

    libsndfile notices the shortfall but only shortens the length it reports, so a truncated WAV would
    otherwise read as a shorter, valid recording. Returns the codec tag from the ``fmt `` chunk.
    """
    with path.open("rb") as fh:
        riff = fh.read(12)
        if len(riff) < 12:
            raise AudioError(path, f"truncated WAV: only {size} bytes, not even a RIFF header")
        if riff[8:12] != b"WAVE":
            return -1
        pos, tag, ds64_data = 12, -1, None
        while pos + 8 <= size:
            fh.seek(pos)
            cid, csize = (hdr := fh.read(8))[:4], int.from_bytes(hdr[4:8], "little")
            if not all(32 <= b < 127 for b in cid):
                raise AudioError(path, f"corrupt WAV: unreadable chunk id {cid!r} at byte {pos}")
            if cid == b"ds64":
                ds64_data = int.from_bytes(fh.read(16)[8:16], "little")
            elif cid == b"fmt ":
                tag = _wav_format_tag(fh.read(min(csize, 40)))
            elif cid == b"data":
                data_size = ds64_data if csize == 0xFFFFFFFF and ds64_data else csize
                _check_data_size(path, pos + 8, data_size, size)
                return tag
            pos += 8 + csize + (csize & 1)
    raise AudioError(path, "truncated or corrupt WAV: no 'data' chunk before the end of the file")


def _wav_format_tag(fmt: bytes) -> int:
    """The codec tag, looking through WAVE_FORMAT_EXTENSIBLE to the sub-format it wraps."""
    tag = int.from_bytes(fmt[0:2], "little") if len(fmt) >= 2 else -1
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")
    return tag


def _check_data_size(path: Path, data_start: int, data_size: int, file_size: int) -> None:
    if data_size in _UNKNOWN_SIZES:
        log.debug(
            "%s: WAV data size is a streaming placeholder (%#x); length taken from the file", path, data_size
        )
        return
    held = file_size - data_start
    if data_size > held:
        raise AudioError(
            path,
            f"truncated WAV: the header promises {data_size} bytes of audio "
            f"but the file holds {max(held, 0)}",
        )


def _looks_like_mp3(head: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start."""
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _has_audio_magic(head: bytes) -> bool:
    return head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp"


def _looks_like_text(head: bytes) -> bool:
    """Text, JSON, CSV, HTML: valid UTF-8 without NUL bytes and without a known audio signature."""
    if _has_audio_magic(head) or b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _strip_path(message: str, path: Path) -> str:
    """libsndfile and ffmpeg repeat the path in their messages; the AudioError already names it."""
    for p in (f"Error opening {os.fspath(path)!r}: ", f"{os.fspath(path)}: "):
        message = message.replace(p, "")
    return message.strip()


# ------------------------------------------------------------------------------------------------ soundfile


def _read_soundfile(src: _Source, start: int, count: int | None, offset: float) -> np.ndarray:
    """Seek and read only the stretch asked for; fewer frames than the header announced is damage."""
    total = src.frames or 0
    if start >= total:
        length = total / src.sample_rate
        raise AudioError(src.path, f"offset {offset:g} s is beyond the end of the audio ({length:.3f} s)")
    wanted = total - start if count is None else min(count, total - start)
    try:
        with sf.SoundFile(os.fspath(src.path)) as fh:
            if start:
                fh.seek(start)
            data = fh.read(wanted, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(src.path, f"corrupt or truncated audio: {_strip_path(str(exc), src.path)}") from exc
    if len(data) < wanted and src.format != "MP3":  # libsndfile's MP3 length is an estimate (see module doc)
        raise AudioError(
            src.path, f"truncated: decoded {start + len(data)} of the {total} frames the header announces"
        )
    return np.ascontiguousarray(data.T)


def _check_finite(path: Path, audio: np.ndarray) -> None:
    """Garbage bytes in a float WAV decode to NaN, inf or 1e38; PCM garbage cannot be told from noise."""
    if audio.size and not (np.isfinite(audio).all() and np.abs(audio).max() <= _MAX_FLOAT_MAGNITUDE):
        raise AudioError(path, "corrupt audio: samples are not finite or far outside [-1, 1]")


# --------------------------------------------------------------------------------------------------- ffmpeg


def _have_ffmpeg() -> bool:
    return shutil.which(FFMPEG) is not None and shutil.which(FFPROBE) is not None


def _probe_ffmpeg(path: Path, head: bytes) -> _Source:
    """Native rate, channels and codec of the first audio stream, from ffprobe's JSON."""
    cmd = [
        FFPROBE,
        "-v",
        "warning",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate,channels,codec_name:format=format_name",
        "-of",
        "json",
        os.fspath(path),
    ]
    proc = _run(path, cmd)
    if proc.returncode != 0:
        what = "corrupt or truncated audio" if _has_audio_magic(head) else "not a recognised audio file"
        raise AudioError(path, f"{what} (ffprobe: {_ffmpeg_message(proc.stderr, path)})")
    if _MP3_SHORTER_THAN_HEADER in proc.stderr:
        # The MP3's Xing/Info header counts more frames than the file holds; ffmpeg would decode the rest.
        raise AudioError(path, "truncated MP3: the file is shorter than its header's frame count")
    probe = json.loads(proc.stdout or b"{}")
    streams = probe.get("streams") or []
    if not streams or not int(streams[0].get("sample_rate") or 0) or not streams[0].get("channels"):
        raise AudioError(path, "not an audio file: no audio stream found")
    stream, fmt = streams[0], probe.get("format", {}).get("format_name", "unknown").split(",")[0]
    codec = str(stream.get("codec_name", "unknown")).upper()
    return _Source(
        path,
        "ffmpeg",
        int(stream["sample_rate"]),
        int(stream["channels"]),
        None,
        _FFMPEG_FORMAT_NAMES.get(fmt, fmt.upper()),
        codec,
    )


def _read_ffmpeg(src: _Source, start: int, count: int | None, offset: float) -> np.ndarray:
    """Decode to float32 at the native rate and channel count; trim to the exact samples asked for.

    The seek is an output option (decode, then discard), which is sample-exact; an input seek jumps by
    bitrate estimates and was seen off by whole frames on MP3 and AAC. Decoding stops after the stretch.
    """
    window: list[str] = []
    if start:
        window += ["-ss", f"{start / src.sample_rate:.9f}"]
    if count is not None:
        window += ["-t", f"{(count + 1) / src.sample_rate:.9f}"]
    raw = _ffmpeg_decode(src, window)
    audio = np.frombuffer(raw, dtype="<f4").reshape(-1, src.channels).T
    if count is not None:
        audio = audio[:, :count]
    if audio.shape[1] == 0 and count != 0:
        if start:
            raise AudioError(src.path, f"offset {offset:g} s is beyond the end of the audio")
        raise AudioError(src.path, "no audio: the file holds 0 frames")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _ffmpeg_count_frames(src: _Source) -> int:
    return len(_ffmpeg_decode(src, [])) // (4 * src.channels)


def _ffmpeg_decode(src: _Source, window: list[str]) -> bytes:
    """Raw little-endian float32 interleaved samples; any error ffmpeg reports is treated as damage."""
    cmd = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        os.fspath(src.path),
        "-map",
        "0:a:0",
        *window,
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-",
    ]
    proc = _run(src.path, cmd)
    if proc.returncode != 0 or proc.stderr.strip():
        message = _ffmpeg_message(proc.stderr, src.path)
        raise AudioError(src.path, f"corrupt or truncated audio (ffmpeg: {message})")
    if len(proc.stdout) % (4 * src.channels):
        raise AudioError(src.path, "corrupt audio: ffmpeg returned a partial sample frame")
    return proc.stdout


def _run(path: Path, cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise AudioError(path, f"needs {cmd[0]} to decode, and it is not installed") from exc


def _ffmpeg_message(stderr: bytes, path: Path) -> str:
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return _strip_path(_FFMPEG_CONTEXT.sub("", lines[-1]), path) if lines else "no message"


# ------------------------------------------------------------------------------------------------- writing


def _frames_for_writing(path: Path, audio: np.ndarray, sample_rate: int, *, clip: bool) -> np.ndarray:
    """Validate the project's (channels, n) layout and turn it into soundfile's (n, channels)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] > _MAX_CHANNELS:
        raise ValueError(
            f"{path}: expected (channels, n) or (n,) audio, got shape {x.shape} (pass channels first)"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{path}: refusing to write zero-length audio")
    if sample_rate <= 0:
        raise ValueError(f"{path}: sample_rate must be positive, got {sample_rate}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    if clip and (n_over := int(np.count_nonzero(np.abs(x) > 1.0))):
        log.warning("%s: clipping %d samples outside [-1, 1]", path, n_over)
        x = np.clip(x, -1.0, 1.0)
    return np.ascontiguousarray(x.T)
