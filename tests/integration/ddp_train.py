"""``tl train`` as test_distributed.py launches it, with torchrun or as one plain process: the CLI's own ``main``,
plus two things the test reads back from ``TL_TEST_PROBE_DIR/rank<R>.json``:

- the SHA-256 of the model's parameters when training ended (after the best checkpoint was loaded), per rank;
- every write, rename, removal or folder creation under the run folder made by a rank other than 0 (a Python audit
  hook sees each one, from our code, the Trainer's or any library's).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.rename": 2, "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "shutil.rmtree": 1, "os.truncate": 1}


def _under(path, root: str) -> bool:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    path = os.fsdecode(os.path.abspath(os.fspath(path)))
    return path == root or path.startswith(root + os.sep)


def watch_writes(root: str, seen: list) -> None:
    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE_FLAGS)
            if writing and _under(path, root):
                seen.append(f"open-for-write {os.fspath(path)}")
        elif event in PATH_EVENTS:
            for path in args[: PATH_EVENTS[event]]:
                if _under(path, root):
                    seen.append(f"{event} {os.fspath(path)}")

    sys.addaudithook(hook)


def main() -> None:
    from transformers import TrainerCallback

    import transferlearn.api as api
    from transferlearn.cli import main as tl_main

    probe_dir = Path(os.environ["TL_TEST_PROBE_DIR"])
    rank = int(os.environ.get("RANK", "0"))
    root = os.path.abspath(sys.argv[sys.argv.index("--output") + 1])
    writes: list[str] = []
    if rank != 0:
        watch_writes(root, writes)
    record: dict = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1"))}

    class ParameterDigest(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            digest = hashlib.sha256()
            for name, tensor in sorted(model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            record["parameters_sha256"] = digest.hexdigest()
            record["global_step"] = state.global_step

    sys.argv = ["tl", *sys.argv[1:]]
    finetune = api.finetune  # `tl train` trains through the Python API, whose callbacks reach every trainer
    api.finetune = lambda config, plan=None, callbacks=(): finetune(config, plan, [*callbacks, ParameterDigest()])
    try:
        tl_main()
        record["exit"] = 0
    except SystemExit as exc:
        record["exit"] = exc.code or 0
    record["writes_by_this_rank"] = writes
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / f"rank{rank}.json").write_text(json.dumps(record, indent=2))
    sys.exit(record["exit"])


if __name__ == "__main__":
    main()
