"""The recording: THE contract between the recorder and every reader (docs/recording-format.md).

format: names, versions, arrays and their checks; writer: Writer; reader: Recording.
"""

from pvrec.recording.format import DEFAULT_KEY_EVERY, FORMAT_VERSION, FrameInfo, disk_usage
from pvrec.recording.reader import Frame, Recording, RecordingWarning, open_recording
from pvrec.recording.writer import Writer

__all__ = ["DEFAULT_KEY_EVERY", "FORMAT_VERSION", "Frame", "FrameInfo", "Recording",
           "RecordingWarning", "Writer", "disk_usage", "open_recording"]
