"""rcr-stream: live Repeat Contact Rate and Contact Rate from a stream of support contacts."""

from stream.native import stale_modules

__version__ = "0.1.0"

# Before any engine module is imported: a compiled one older than its source would run
# code that is gone (stream/native.py).
if _stale := stale_modules():
    raise ImportError(
        f"compiled engine modules are older than their source ({', '.join(_stale)}): "
        "rebuild them with `make install` (or `python stream/native.py`)"
    )
