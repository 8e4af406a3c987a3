"""Named crash points for the crash-safety tests (the failpoint technique of SQLite, etcd and FreeBSD).

``TL_FAILPOINT=NAME`` makes the process kill itself with SIGKILL the first time it reaches ``failpoint(NAME)``:
exactly at the worst moment (a file half-written, a checkpoint without its state), which a test polling from
outside cannot hit reliably. ``NAME@N`` fires on the N-th time that point is reached. Unset, a failpoint is one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def failpoint(name: str) -> None:
    wanted = os.environ.get("TL_FAILPOINT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
