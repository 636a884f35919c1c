"""pvrec: a time-lapse camera for Linux physical memory."""

__version__ = "0.1.0"
