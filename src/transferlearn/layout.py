"""Every path of a run folder, in one place. Stages ask this object; none joins ``run_dir / "..."`` itself.

``runs/<name>/``::

    config.yaml      what the user asked for (TrainConfig), written once at the start
    plan.json        what was resolved from it (modality, strategy, learning rate, batching, auto's choice)
    data.json        splits, class counts, notes from the data checks
    history.jsonl    every logged training / validation event
    metrics.json     final metrics (validation, test) and training totals
    report.html      the self-contained report
    model/           the trained model (Hugging Face / timm folder)
    checkpoints/     Trainer checkpoints; removed after a successful run unless --keep-checkpoints
    adapter/ probe/ auto/ auto.json lr_find/ features/ augmentation.png tensorboard/ mlflow.db wandb/
    deploy/          ONNX variants, variants.json, bench.json / .md / .png

``--overwrite`` clears exactly :meth:`RunLayout.owned`, so a new run never shows a file of the old one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

# ONNX variants and their files inside deploy/ (torch's dynamic int8 is a recipe rebuilt at load time: no file)
FP32, DYNAMIC, STATIC, TORCH_DYNAMIC = "onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "torch-int8-dynamic"
ONNX_FILES = {FP32: "model.onnx", DYNAMIC: "model.int8-dynamic.onnx", STATIC: "model.int8-static.onnx"}


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    # --- files a run writes ---------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def data_summary(self) -> Path:
        return self.root / "data.json"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def probe(self) -> Path:
        """The LP-FT probe's own Trainer folder (its history)."""
        return self.root / "probe"

    @property
    def auto(self) -> Path:
        """``auto``'s quick probe folder."""
        return self.root / "auto"

    @property
    def auto_record(self) -> Path:
        return self.root / "auto.json"

    @property
    def lr_find(self) -> Path:
        return self.root / "lr_find"

    @property
    def lr_find_plot(self) -> Path:
        return self.lr_find / "lr_find.png"

    @property
    def features(self) -> Path:
        """The run-local feature cache (``--feature-cache run``)."""
        return self.root / "features"

    @property
    def predictions(self) -> Path:
        """``predictions/<split>.npz``: the final model's logits and the true labels, in the split's row order."""
        return self.root / "predictions"

    def predictions_file(self, split: str) -> Path:
        return self.predictions / f"{split}.npz"

    @property
    def augmentation(self) -> Path:
        return self.root / "augmentation.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    # --- deploy/ --------------------------------------------------------------------------------
    @property
    def deploy(self) -> Path:
        return self.root / "deploy"

    @property
    def variants(self) -> Path:
        return self.deploy / "variants.json"

    @property
    def bench_json(self) -> Path:
        return self.deploy / "bench.json"

    @property
    def bench_md(self) -> Path:
        return self.deploy / "bench.md"

    @property
    def bench_plot(self) -> Path:
        return self.deploy / "bench.png"

    def onnx_file(self, variant: str) -> Path:
        return self.deploy / ONNX_FILES[variant]

    # --- the folder as a whole ------------------------------------------------------------------
    def owned(self) -> list[Path]:
        """Every top-level entry a run may write: what ``--overwrite`` clears."""
        return [self.config, self.plan, self.data_summary, self.history, self.metrics, self.report, self.model,
                self.checkpoints, self.adapter, self.probe, self.auto, self.auto_record, self.lr_find,
                self.features, self.predictions, self.augmentation, self.tensorboard, self.mlflow_db, self.wandb, self.deploy]

    def markers(self) -> list[str]:
        """Names of the entries present that show the folder holds a run."""
        return [p.name for p in (self.config, self.metrics, self.model, self.checkpoints) if p.exists()]

    def is_run(self) -> bool:
        return self.config.exists()

    def owned_present(self) -> list[Path]:
        return [p for p in self.owned() if p.exists() or p.is_symlink()]

    def set_aside(self) -> "SetAside":
        """Move every owned entry into a hidden sibling folder: restorable until :meth:`SetAside.discard`."""
        import tempfile

        aside = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.replaced-", dir=self.root.parent))
        moved = []
        for path in self.owned_present():
            path.rename(aside / path.name)  # same file system: a rename, nothing copied
            moved.append(path.name)
        return SetAside(self, aside, moved)

    def temporaries(self) -> list[Path]:
        """What a process killed mid-write left: ``.NAME.XXXX.tmp`` files (io.atomic_write_*) and ``.model.tmp``."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob(".*.tmp") if p.name.startswith("."))

    def clear(self) -> None:
        """Remove every entry the layout owns (and nothing else)."""
        for path in self.owned():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass(frozen=True)
class SetAside:
    """An earlier run's entries, moved out of the way by ``--overwrite`` while the new run works: put back if it
    fails, deleted once it has succeeded, so a bad new run never costs the old one."""

    layout: RunLayout
    folder: Path
    moved: list

    def restore(self) -> None:
        self.layout.clear()  # whatever the failed run managed to write
        for name in self.moved:
            (self.folder / name).rename(self.layout.root / name)
        shutil.rmtree(self.folder, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def complete_checkpoints(folder: Path) -> tuple[list[Path], list[Path]]:
    """(complete, incomplete) ``checkpoint-N`` folders, oldest first. The Trainer writes ``trainer_state.json``
    last, after the weights: a folder without it (or with a torn one) was cut off while being written."""
    complete, incomplete = [], []
    folders = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                     key=lambda p: int(p.name.split("-")[-1]))
    for path in folders:
        try:
            json.loads((path / "trainer_state.json").read_text())
            weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
        except (OSError, ValueError):
            weights = False
        (complete if weights else incomplete).append(path)
    return complete, incomplete
