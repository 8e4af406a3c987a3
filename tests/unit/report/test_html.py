"""The report: self-contained HTML built from the run folder, with its figures embedded as PNG."""

from __future__ import annotations

import base64
import re
import shutil

from transferlearn import Run
from transferlearn.plots import png_bytes, subplots
from transferlearn.report.html import render_report, write_report


def test_report_embeds_every_figure_and_the_results(trained_tiny_run):
    page = (trained_tiny_run.path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6  # loss, learning rate, validation metrics, per-class, confusion matrix, reliability
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
    assert page.count("data:image/png;base64,") == 7
    assert render_report(run) == page


def test_report_shows_the_highest_loss_examples_calibration_and_a_diagnosis(trained_tiny_run):
    from transferlearn.report.errors import top_losses

    page = (trained_tiny_run.path / "report.html").read_text()
    assert "What the model gets wrong" in page and "Most confused pairs" in page
    worst = top_losses(trained_tiny_run, None, 1)["examples"][0]
    assert worst["input"] in page  # the sentence itself, inline
    assert "Calibration: reliability diagram" in page
    assert any(k in page for k in ("overfitting", "no sign of overfitting", "more training might help"))
    # readable tables: per-class scores, the splits' class counts, the keys set away from their defaults
    assert "<th>precision</th><th>recall</th><th>F1</th><th>support</th>" in page
    assert "<th>split</th><th>rows</th><th>negative</th><th>positive</th>" in page
    assert "keys not at their defaults" in page and "<td>lr</td><td>0.01</td>" in page and "<details>" in page


def test_pictures_and_clips_are_shown_inline(trained_image_run, trained_audio_run):
    image_page = (trained_image_run.path / "report.html").read_text()
    assert "<img class='thumb'" in image_page and "src='data:image/png;base64," in image_page
    audio_page = (trained_audio_run.path / "report.html").read_text()
    assert "<audio controls" in audio_page and "src='data:audio/wav;base64," in audio_page


def test_the_overfitting_diagnosis_reads_the_losses():
    from transferlearn.report.looking import overfitting_diagnosis

    rising = [{"step": s, "loss": 1.0 - s / 100} for s in range(1, 60)] + [
        {"step": 20, "epoch": 1, "eval_loss": 0.6}, {"step": 40, "epoch": 2, "eval_loss": 0.5},
        {"step": 60, "epoch": 3, "eval_loss": 0.7}]
    assert "overfitting" in overfitting_diagnosis(rising) and "epoch 2" in overfitting_diagnosis(rising)
    falling = rising[:-1] + [{"step": 60, "epoch": 3, "eval_loss": 0.4}]
    assert "still falling" in overfitting_diagnosis(falling)
    assert overfitting_diagnosis([{"step": 1, "loss": 1.0}]) is None


def test_plots_leave_no_global_figure_state():
    import matplotlib

    backend = matplotlib.get_backend()
    fig, ax = subplots(figsize=(2, 2))
    ax.plot([0, 1])
    assert png_bytes(fig)[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend
