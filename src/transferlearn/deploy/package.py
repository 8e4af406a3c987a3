"""``tl package`` (a Hub-ready folder with a generated model card) and ``tl push`` (huggingface_hub upload).

The token comes from ``HF_TOKEN`` (or the huggingface_hub login) and is handed to huggingface_hub only:
never printed, logged, or written anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..models.zoo import ZOO, is_offline_name
from ..run import Run
from .variants import DeployError, chosen_variant


def _base_model(run: Run) -> str | None:
    name = run.config.model
    if is_offline_name(name):
        return ZOO[name.split(":", 1)[1]].hub_equivalent
    return None if Path(name).exists() else name


def model_card(run: Run, files: list[str]) -> str:
    metrics, config = run.metrics, run.config
    test = metrics.get("test") or metrics.get("validation", {})
    split = "test" if "test" in metrics else "validation"
    modality, shape = run.modality, run.shape
    library = modality.library_name(run.model_dir)
    base = _base_model(run)
    dataset_name = Path(config.data).name if Path(config.data).exists() else config.data
    meta = {
        "library_name": library, "pipeline_tag": modality.pipeline_tag,
        "tags": ["transferlearn", modality.name, f"strategy-{config.strategy.split(':')[0]}"],
        "datasets": [dataset_name],
        "model-index": [{"name": run.path.name, "results": [{
            "task": {"type": modality.pipeline_tag},
            "dataset": {"name": dataset_name, "type": dataset_name, "split": split},
            "metrics": [{"type": name, "name": name.replace("_", " "), "value": round(test[name], 4)}
                        for name in shape.shown_metrics if isinstance(test.get(name), (int, float))],
        }]}],
    }
    if base:
        meta["base_model"] = base
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
             f"# {run.path.name}", "",
             f"A {modality.name} model ({shape.describe()}) fine-tuned with [transferlearn](https://github.com/) from "
             f"`{config.model}`" + (f" (same weights as `{base}`)" if base else "") +
             f" on `{dataset_name}` with the `{config.strategy}` strategy.", "",
             f"Outputs: {', '.join(run.label_names)}", "", "## Results", "",
             "| split | rows | " + " | ".join(n.replace("_", " ") for n in shape.shown_metrics) + " |",
             "|---|---|" + "---|" * len(shape.shown_metrics)]
    for name in ("validation", "test"):
        if name in metrics:
            m = metrics[name]
            lines.append(f"| {name} | {m['num_samples']} | " + " | ".join(
                f"{m[k]:.4f}" if isinstance(m.get(k), (int, float)) else "-" for k in shape.shown_metrics) + " |")
    bench_md = run.layout.bench_md
    if bench_md.exists():
        lines += ["", "## Deployment variants (measured by `tl bench`)", "", bench_md.read_text().strip()]
    train = metrics.get("train", {})
    lines += ["", "## Training", "",
              f"{train.get('num_samples')} training rows, {train.get('epochs')} epochs, "
              f"{train.get('trainable_parameters'):,} of {train.get('total_parameters') or 0:,} parameters trained, "
              f"{train.get('runtime_s')} s on {train.get('device')}.", "", "```yaml",
              yaml.safe_dump({**{k: v for k, v in config.model_dump(mode="json").items()
                                 if k not in ("output", "overwrite", "resume", "progress")},
                              "data": dataset_name}, sort_keys=False).strip(),  # a name, never a local path
              "```", "", "## Use", ""]
    lines += modality.usage_snippet(run.model_dir)
    if any(f.startswith("onnx/") for f in files):
        lines += ["", "ONNX (onnxruntime only): `onnx/` holds the variant chosen by `tl bench`; inputs as listed in "
                  "`onnx/variant.json`."]
    lines += ["", "## Intended use and limitations", "",
              f"Classifying {modality.name} inputs like those in `{dataset_name}` into the labels above. Scores "
              "are measured on that dataset's held-out split only; expect lower accuracy on other domains, "
              "languages, or input conditions, and check for the classes and groups that matter to you before "
              "relying on it. Not for decisions about people without human review."]
    return "\n".join(lines) + "\n"


def package(run: Run, out_dir: str | Path, *, overwrite: bool = False) -> list[str]:
    """Write the Hub-ready folder; returns its files (relative paths)."""
    out_dir = Path(out_dir)
    if not run.model_dir.exists():
        raise ConfigError(f"{run.path}: no model/ folder to package (did training finish?)")
    _refuse_run_folder(run, out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} exists and is not empty; pass --overwrite or another --out")
    tmp = Path(tempfile.mkdtemp(prefix=".package-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        for item in run.model_dir.iterdir():
            if item.is_file() and item.suffix not in (".bin", ".pt", ".pth", ".pkl"):  # safetensors only
                shutil.copy2(item, tmp / item.name)
        variant = chosen_variant(run)
        if variant:
            (tmp / "onnx").mkdir()
            shutil.copy2(run.layout.onnx_file(variant), tmp / "onnx" / "model.onnx")
            info, fp32 = run.variants.get(variant, {}), run.variants.get("onnx-fp32", {})
            (tmp / "onnx" / "variant.json").write_text(json.dumps({"variant": variant, **info,
                                                                   "inputs": fp32.get("inputs")}, indent=2))
        from .source import PACKAGE_INFO, ModelSource

        # what `tl serve` / the predictor need to use the folder without the run (modality, labels, lengths)
        (tmp / PACKAGE_INFO).write_text(json.dumps(ModelSource.from_run(run).package_info(), indent=2) + "\n")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        (tmp / "README.md").write_text(model_card(run, files))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())


def _refuse_run_folder(run: Run, out_dir: Path) -> None:
    """``--out`` may not be, hold, or sit inside a run folder: replacing it would destroy the run."""
    out, root = out_dir.resolve(), run.path.resolve()
    if out == root or root in out.parents or out in root.parents:
        raise ConfigError(f"--out {out_dir} is, holds or sits inside the run folder {run.path}; choose a folder "
                          "outside it")
    if (out_dir / "config.yaml").exists() or (out_dir / "metrics.json").exists():
        raise ConfigError(f"--out {out_dir} holds a run folder; choose another folder")


def push(run: Run, repo_id: str, *, private: bool = False, dry_run: bool = False) -> dict:
    """Package into a temporary folder and upload it; ``dry_run`` lists exactly what would be uploaded."""
    if "/" not in repo_id:
        raise ConfigError(f"--repo-id must look like user/name (got '{repo_id}')")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "package"
        files = package(run, folder)
        listing = [{"path": f, "bytes": (folder / f).stat().st_size} for f in files]
        if dry_run:
            return {"repo_id": repo_id, "private": private, "files": listing, "uploaded": False}
        import httpx
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        token = os.environ.get("HF_TOKEN")  # None: huggingface_hub falls back to a saved login
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                                       commit_message=f"transferlearn: {run.path.name}")
        except OfflineModeIsEnabled:
            raise DeployError(f"tl push: offline (HF_HUB_OFFLINE is set), so nothing was uploaded to {repo_id}. "
                              "Unset HF_HUB_OFFLINE when online, or use --dry-run / `tl package` to write the "
                              "folder locally.") from None
        except HfHubHTTPError as exc:  # 401 / 403 / 404 ...: the Hub's own one-line reason (it never holds the token)
            reason = str(exc).splitlines()[0]
            raise DeployError(f"tl push to {repo_id} failed: {reason}. Check HF_TOKEN (a write token) and the repo "
                              "name.") from None
        except (OSError, httpx.HTTPError) as exc:  # no network (huggingface_hub talks through httpx)
            raise DeployError(f"tl push to {repo_id} failed: cannot reach the Hub ({exc}).") from None
        return {"repo_id": repo_id, "private": private, "files": listing, "uploaded": True,
                "url": getattr(commit, "commit_url", str(commit))}
