"""Best-effort threaded decoding: yields frames, counts decode errors instead of giving up on the first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import av
from av.container import InputContainer
from av.stream import Discard
from av.video.frame import VideoFrame
from av.video.stream import VideoStream


@dataclass
class DecodeStats:
    packets: int = 0
    decode_errors: int = 0
    corrupt_frames: int = 0
    warnings: list[str] = field(default_factory=list)


def decode_frames(container: InputContainer, stream: VideoStream, stats: DecodeStats) -> Iterator[VideoFrame]:
    """Every decodable frame of ``stream`` in presentation order.

    A bad packet costs that packet (FFmpeg conceals what it can); a demuxer error ends the stream
    early (a truncated file) after draining the frames still inside the decoder.
    """
    # Frame+slice threads: ~decode speed of the ffmpeg CLI, which is the benchmark's yardstick.
    stream.thread_type = "AUTO"
    for other in container.streams:
        if other is not stream:
            other.discard = Discard.all  # do not even parse audio/data packets
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            stats.warnings.append(f"stream ended early: {exc}")
            break
        stats.packets += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:
            stats.decode_errors += 1
            continue
        for frame in frames:
            if frame.is_corrupt:
                stats.corrupt_frames += 1
            yield frame
    try:
        yield from stream.codec_context.decode(None)
    except av.FFmpegError:
        stats.decode_errors += 1
