"""study.html, sweep.html and compare.html in a real headless Chromium (Debian's, driven by Playwright): no console
errors, and every <img> decoded to a picture that is not blank (its natural size, and its rendered pixels vary)."""

from __future__ import annotations

import pytest

from conftest import assert_pictures_drawn, open_page


@pytest.fixture(scope="module")
def pages(tmp_path_factory, sentiment_folder, tiny_text_model):
    from transferlearn.report.compare import expand, write_compare
    from transferlearn.study.config import StudyConfig, SweepConfig
    from transferlearn.study.runner import Study
    from transferlearn.study.sweep import Sweep

    root = tmp_path_factory.mktemp("pages")
    model = str(tiny_text_model("bert"))
    settings = {"epochs": 2, "baseline": False, "lr": 5e-3, "early_stopping_patience": 0}
    study = Study(StudyConfig(data=str(sentiment_folder), model=model, arms="linear-probe,full",
                              fractions="0.25,0.5,1", seeds=1, output=str(root / "study")), settings)
    study.run(report=lambda line: None)
    sweep = Sweep(SweepConfig(data=str(sentiment_folder), model=model, space="lr=1e-3:1e-2:log", trials=3,
                              output=str(root / "sweep")), settings)
    sweep.run(report=lambda line: None)
    compare = write_compare(expand([root / "study" / "runs"]), root / "compare.html")
    return {"study": root / "study" / "study.html", "sweep": root / "sweep" / "sweep.html", "compare": compare}


@pytest.mark.parametrize("name,least", [("study", 2), ("sweep", 2), ("compare", 3)])
def test_the_page_loads_clean_with_every_picture_drawn(browser, pages, name, least, tmp_path):
    page, problems, requests = open_page(browser, pages[name].as_uri())
    assert page.locator("img").count() >= least
    assert_pictures_drawn(page, min_width=50, min_std=5, name=name)
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), "the page fetched something: not self-contained"
