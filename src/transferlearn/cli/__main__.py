"""``python -m transferlearn.cli``: the same as ``tl``."""

from . import main

main()
