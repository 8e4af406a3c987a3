"""Imports sit at the top of modules. The one exception is the set of modules `tl --help` loads (the start-up
set below, listed here and only here): a function-level import there keeps a heavy library (transformers' Trainer,
timm, datasets' audio/image decoding, ONNX) out of every command's start-up. Elsewhere a function-level import is
allowed only for an optional extra (tracking, sweeps, Ray, audit, serving, deploy), inside a try or an if."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import transferlearn

SRC = Path(transferlearn.__file__).parent

# the modules `import transferlearn.cli` loads: the only ones that keep imports inside functions (lazily)
STARTUP = {
    "transferlearn", "transferlearn.cli", "transferlearn.cli.options", "transferlearn.config", "transferlearn.data",
    "transferlearn.data.labels", "transferlearn.data.splits", "transferlearn.data.tables", "transferlearn.data.text",
    "transferlearn.deploy", "transferlearn.deploy.source", "transferlearn.deploy.variants", "transferlearn.distributed",
    "transferlearn.errors", "transferlearn.failpoints", "transferlearn.io", "transferlearn.layout",
    "transferlearn.machine", "transferlearn.modalities", "transferlearn.modalities.audio",
    "transferlearn.modalities.base", "transferlearn.modalities.detect", "transferlearn.modalities.image",
    "transferlearn.modalities.text", "transferlearn.planned", "transferlearn.run",
    "transferlearn.serve", "transferlearn.serve.app", "transferlearn.serve.batcher", "transferlearn.serve.config",
    "transferlearn.shapes", "transferlearn.shapes.base", "transferlearn.shapes.detect", "transferlearn.shapes.multi_label",
    "transferlearn.shapes.multi_output", "transferlearn.shapes.regression", "transferlearn.shapes.saved",
    "transferlearn.shapes.single", "transferlearn.shapes.token_tags", "transferlearn.study",
    "transferlearn.study.config",
}
OPTIONAL = ("mlflow", "wandb", "tensorboard", "optuna", "ray", "cleanlab", "onnx", "onnxruntime", "onnxscript",
            "fastapi", "uvicorn", "prometheus_client", "audiomentations", "librosa", "playwright", "deepspeed",
            "torch.utils.tensorboard", "multipart", "httpx", "uvloop", "skops")


def _module_name(path: Path) -> str:
    return ".".join(("transferlearn", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def _lazy_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import inside a function, except optional extras and guarded ones."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(func):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            name = node.names[0].name if isinstance(node, ast.Import) else ("." * node.level + (node.module or ""))
            if name.split(".")[0] in OPTIONAL or name in OPTIONAL:
                continue
            up, guarded = parents.get(node), False
            while up is not None and up is not func:
                guarded = guarded or isinstance(up, (ast.Try, ast.If, ast.With))
                up = parents.get(up)
            if not guarded:
                found.append((node.lineno, name))
    return found


def test_tl_help_loads_only_the_start_up_modules():
    code = ("import sys, json, transferlearn.cli\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('transferlearn'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert loaded == STARTUP, (sorted(loaded - STARTUP), sorted(STARTUP - loaded))


def test_imports_are_at_the_top_outside_the_start_up_modules():
    offenders = [f"{_module_name(p)}:{line} imports {name}" for p in sorted(SRC.rglob("*.py"))
                 if _module_name(p) not in STARTUP for line, name in _lazy_imports(p)]
    assert offenders == []


def test_the_lazy_import_finder_finds_one():
    """The check above is not vacuous: it sees a plain import inside a function, and leaves a guarded one alone."""
    sample = SRC.parent / "_sample_for_test_imports.py"
    try:
        sample.write_text("def f():\n    import json\n\n\ndef g():\n    try:\n        import mlflow\n    except ImportError:\n"
                          "        pass\n    import numpy\n")
        assert _lazy_imports(sample) == [(2, "json"), (10, "numpy")]
    finally:
        sample.unlink()
