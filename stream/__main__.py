"""``python -m stream``: the ``rcr`` command line."""

from stream.cli import main

main()
