"""The report: self-contained HTML built from the run folder, with its figures embedded as PNG."""

from __future__ import annotations

import base64
import re
import shutil

from transferlearn import Run
from transferlearn.report.html import render_report, write_report
from transferlearn.report.plots import png_bytes, subplots


def test_report_embeds_every_figure_and_the_results(trained_tiny_run):
    page = (trained_tiny_run.path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # loss, learning rate, validation metrics, per-class, confusion matrix
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert "http://" not in page and "https://" not in page  # nothing to fetch: readable offline
    test = trained_tiny_run.metrics["test"]
    assert f"{test['accuracy']:.4f}" in page and f"{test['macro_f1']:.4f}" in page


def test_report_picks_up_files_the_layout_names(trained_tiny_run, tmp_path):
    shutil.copytree(trained_tiny_run.path, tmp_path / "run")
    run = Run.load(tmp_path / "run")
    fig, ax = subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    run.layout.bench_plot.parent.mkdir(parents=True)
    run.layout.bench_plot.write_bytes(png_bytes(fig))
    write_report(run)
    page = run.layout.report.read_text()
    assert "Deployment variants: latency vs quality" in page
    assert page.count("data:image/png;base64,") == 6
    assert render_report(run) == page


def test_plots_leave_no_global_figure_state():
    import matplotlib

    backend = matplotlib.get_backend()
    fig, ax = subplots(figsize=(2, 2))
    ax.plot([0, 1])
    assert png_bytes(fig)[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend
