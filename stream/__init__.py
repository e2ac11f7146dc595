"""rcr-stream: live Repeat Contact Rate and Contact Rate from a stream of support contacts."""

__version__ = "0.1.0"
