"""report.html and audit.html for a text, an image and an audio run in a real headless Chromium: no console
errors, every picture decodes to a non-blank image, every audio element has a playable source; screenshots are
written under the test's tmp dir."""

from __future__ import annotations

import pytest

from conftest import assert_pictures_drawn, open_page


@pytest.fixture(scope="module")
def audits(tmp_path_factory, sentiment_folder, image_folder, audio_folder, tiny_text_model, tiny_image_model,
           tiny_audio_model):
    from transferlearn import load_config
    from transferlearn.audit.runner import run_audit

    root = tmp_path_factory.mktemp("audits")
    made = {}
    for name, data, model, task in (("text", sentiment_folder, tiny_text_model("bert"), "text"),
                                    ("image", image_folder, tiny_image_model(), "image"),
                                    ("audio", audio_folder, tiny_audio_model(), "audio")):
        run_audit(load_config(data=str(data), model=str(model), task=task), root / name, report=lambda line: None)
        made[name] = root / name / "audit.html"
    return made


def _check_page(browser, url, shot):
    page, problems, _ = open_page(browser, url)
    images = assert_pictures_drawn(page, min_width=0, min_std=1)
    players = page.locator("audio")
    for i in range(players.count()):
        state = players.nth(i).evaluate(
            "a => new Promise(done => { if (a.readyState >= 1) done([a.readyState, a.duration]);"
            " else { a.onloadedmetadata = () => done([a.readyState, a.duration]); a.onerror = () => done([-1, 0]); }"
            " a.load(); })")
        assert state[0] >= 1 and state[1] > 0, f"audio {i} has no playable source"
    page.screenshot(path=str(shot), full_page=True)
    assert problems == []
    return images, players.count()


@pytest.mark.parametrize("kind", ["text", "image", "audio"])
def test_report_and_audit_pages_render(browser, kind, trained_tiny_run, trained_image_run, trained_audio_run, audits,
                                       tmp_path):
    run = {"text": trained_tiny_run, "image": trained_image_run, "audio": trained_audio_run}[kind]
    images, players = _check_page(browser, (run.path / "report.html").as_uri(), tmp_path / f"report-{kind}.png")
    assert images >= 5
    if kind == "audio":
        assert players >= 1
    if kind == "image":
        assert images >= 6  # the figures and the worst examples' thumbnails
    images, players = _check_page(browser, audits[kind].as_uri(), tmp_path / f"audit-{kind}.png")
    if kind == "audio":
        assert players >= 1
    if kind == "image":
        assert images >= 1
    assert (tmp_path / f"report-{kind}.png").stat().st_size > 10_000


@pytest.mark.parametrize("kind", ["multi-label", "multi-output", "regression"])
def test_the_report_of_each_label_shape_renders(browser, kind, shape_folder, tiny_text_model, tmp_path):
    from transferlearn import finetune, load_config

    run = finetune(load_config(data=str(shape_folder(kind)), model=str(tiny_text_model("bert")),
                               strategy="linear-probe", output=str(tmp_path / "run"), progress=False,
                               **({"label_column": "praise,tone"} if kind == "multi-output" else {})))
    page, problems, _ = open_page(browser, (run.path / "report.html").as_uri())
    images = assert_pictures_drawn(page, min_width=0, min_std=1)
    headings = page.locator("h2").all_inner_texts()
    page.screenshot(path=str(tmp_path / f"report-{kind}.png"), full_page=True)
    assert problems == [] and images >= 4
    assert run.shape.detail_title in " ".join(headings) or page.get_by_text(run.shape.detail_title).count() >= 1
    if kind == "regression":
        assert page.get_by_text("Predicted vs true").count() >= 1 and page.get_by_text("Residuals").count() >= 1
