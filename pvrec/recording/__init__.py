"""The recording: THE contract between the recorder and every reader (docs/recording-format.md).

format: names, versions, arrays, the compatibility rule; header: the Header read once; writer:
Writer; reader: Recording.
"""

from pvrec.recording.format import DEFAULT_KEY_EVERY, FORMAT_VERSION, FrameInfo, disk_usage
from pvrec.recording.header import Header, Node, Zone
from pvrec.recording.reader import Frame, Recording, open_recording
from pvrec.recording.writer import Writer

__all__ = ["DEFAULT_KEY_EVERY", "FORMAT_VERSION", "Frame", "FrameInfo", "Header", "Node",
           "Recording", "Writer", "Zone", "disk_usage", "open_recording"]
