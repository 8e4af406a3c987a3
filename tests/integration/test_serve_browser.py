"""The try-it page in a real headless Chromium (Debian's, driven by Playwright; no browser download): it loads
without console errors, a typed text and an uploaded image come back as labels on the page, and a screenshot is
written."""

from __future__ import annotations


def _open(browser, url):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#go:not([disabled])", timeout=30000)
    return page, problems


def _type_and_predict(page, texts: list[str]) -> list[str]:
    """Type ``texts`` into the page, press the button, and return the answers it shows (one per text)."""
    page.fill("#texts", "\n".join(texts))
    page.click("#go")
    page.wait_for_selector(f"#results .result >> nth={len(texts) - 1}", timeout=30000)
    return page.locator("#results .label").all_inner_texts()


def test_text_typed_on_the_page_comes_back_labelled(browser, trained_tiny_run, serve_run, tmp_path):
    server = serve_run(trained_tiny_run.path, "--backend", "torch")
    page, problems = _open(browser, server.url + "/")
    assert "A text model (single-label classification): negative, positive" in page.inner_text("#summary")
    labels = _type_and_predict(page, ["good food and lovely staff", "awful terrible place"])
    assert len(labels) == 2 and set(labels) <= {"negative", "positive"}
    assert page.inner_text("#error") == ""
    page.screenshot(path=str(tmp_path / "text.png"), full_page=True)
    assert (tmp_path / "text.png").stat().st_size > 1000
    assert problems == []


def test_an_uploaded_image_comes_back_labelled(browser, trained_image_run, image_folder, serve_run, tmp_path):
    server = serve_run(trained_image_run.path, "--backend", "torch")
    page, problems = _open(browser, server.url + "/")
    assert "image model (single-label classification)" in page.inner_text("#summary")
    picture = sorted((image_folder / "test").rglob("*.png"))[0]
    page.set_input_files("#files", str(picture))
    page.click("#go")
    page.wait_for_selector("#results .result", timeout=30000)
    assert page.locator("#results .label").all_inner_texts()[0] in ("blue", "red")
    page.screenshot(path=str(tmp_path / "image.png"), full_page=True)
    assert (tmp_path / "image.png").stat().st_size > 1000
    assert problems == []


def test_a_tag_set_model_shows_its_tags_and_scores(browser, shape_folder, tiny_text_model, serve_run, tmp_path):
    from transferlearn import finetune, load_config

    run = finetune(load_config(data=str(shape_folder("multi-label")), model=str(tiny_text_model("bert")),
                               strategy="linear-probe", output=str(tmp_path / "run"), progress=False, baseline=False))
    server = serve_run(run.path, "--backend", "torch")
    page, problems = _open(browser, server.url + "/")
    assert "(multi-label classification (tag sets)): complaint, praise" in page.inner_text("#summary")
    texts = ["the food was great and lovely", "the staff was awful and bad"]
    shown = _type_and_predict(page, texts)
    assert shown == [run.shape.headline(r)[0] for r in run.predict(texts)]
    assert page.locator("#results .result >> nth=0").locator(".row").count() == 2  # a bar per tag
    assert problems == []


def test_a_tagger_marks_the_entities_in_the_text(browser, tmp_path, tiny_text_model, serve_run):
    from conftest import write_conll_folder
    from transferlearn import finetune, load_config

    run = finetune(load_config(data=str(write_conll_folder(tmp_path / "ner")), model=str(tiny_text_model("bert")),
                               strategy="full", epochs=12, lr=5e-3, warmup_ratio=0.0, batch_size=16,
                               early_stopping_patience=0, output=str(tmp_path / "run"), progress=False,
                               baseline=False))
    server = serve_run(run.path, "--backend", "torch")
    page, problems = _open(browser, server.url + "/")
    assert "token tagging" in page.inner_text("#summary")
    text = "the food good great was very awful and the staff"
    page.fill("#texts", text)
    page.click("#go")
    page.wait_for_selector("#results .result", timeout=30000)
    expected = run.predict([text])[0]["entities"]
    assert expected, "the tiny tagger should find a name here"
    marks = page.locator("#results mark")
    assert marks.count() == len(expected)
    assert [marks.nth(i).get_attribute("data-type") for i in range(marks.count())] == [e["type"] for e in expected]
    for i, entity in enumerate(expected):
        assert marks.nth(i).inner_text().startswith(entity["text"])  # the marked words, then their type
    shown = page.eval_on_selector("#results .tagged", "el => { const c = el.cloneNode(true); "
                                  "c.querySelectorAll('sub').forEach((s) => s.remove()); return c.textContent; }")
    assert shown == text  # the whole input, the entities marked in place
    page.screenshot(path=str(tmp_path / "tagger.png"), full_page=True)
    assert (tmp_path / "tagger.png").stat().st_size > 1000 and problems == []
