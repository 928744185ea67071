"""The web page of `glassnet serve RUN`, driven in a real headless browser.

Two tiny runs (a CNN on digits, a GRU on a generated two-class text CSV) are served by
`python -m glassnet serve RUN` on free local ports; Debian's chromium, driven by Playwright (pointed at
the system browser: Playwright's own browser download is never used), uploads an image and a text
through the page, and the prediction it shows must equal `glassnet predict`'s. The page must also show
an error when the server refuses an input (a text file named .png).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)

# slow: beyond the two one-epoch trainings, two servers start (~10 s) and the browser waits on /explain
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium binary on PATH for the browser tests of the serve page (apt-get install chromium)",
    ),
]
pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright drives the browser in the serve page's tests: pip install -e '.[dev]'",
)
pytest.importorskip("fastapi", reason="glassnet serve needs its extra: pip install -e '.[serve]'")

from playwright.sync_api import Browser, Page, Response, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402

from glassnet.cli import main  # noqa: E402
from glassnet.pipeline import Run, predict  # noqa: E402

STARTUP_S = 60.0  # the server imports torch and opens the run before /health answers
ANSWER_MS = 60_000  # /predict then /explain, on two shared CPU cores


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, word_csv: Path) -> dict[str, Path]:
    """An image run and a text run, each trained for one epoch with the command line."""
    root = tmp_path_factory.mktemp("serve-runs")
    image, text = root / "digits-cnn", root / "words-gru"
    common = ["--epochs", "1", "--quiet"]
    assert main(["train", "--data", "digits", "--model", "cnn", *common, "--out", str(image)]) == 0
    words = word_csv
    assert main(["train", "--data", str(words), "--model", "gru", *common, "--out", str(text)]) == 0
    return {"image": image, "text": text}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200 and json.loads(answer.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def servers(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`python -m glassnet serve RUN --port P` for each run (started together); their base URLs."""
    logs = tmp_path_factory.mktemp("serve-logs")
    started: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
    try:
        for kind, run in runs.items():
            port, log = _free_port(), logs / f"{kind}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "glassnet", "serve", str(run), "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "MPLBACKEND": "Agg"},
                )
            started[kind] = (process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + STARTUP_S
        for kind, (process, url, log) in started.items():
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    state = f"exited with {process.returncode}" if process.poll() is not None else "not healthy"
                    pytest.fail(
                        f"glassnet serve {runs[kind]} {state} after {STARTUP_S:.0f} s at most:\n{log.read_text()}"
                    )
                time.sleep(0.2)
        yield {kind: url for kind, (_, url, _) in started.items()}
    finally:
        for process, _, _ in started.values():
            process.terminate()
        for process, _, _ in started.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # root (CI containers) needs --no-sandbox; the system chromium, never a downloaded one
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        yield chromium
        chromium.close()


class Console(list):
    """The page's console messages and uncaught errors, for the assertion messages."""

    def __str__(self) -> str:
        return "\n".join(self) or "(nothing on the console)"


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Console]]:
    context = browser.new_context()
    tab = context.new_page()
    console = Console()
    tab.on("console", lambda message: console.append(f"console.{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
    tab.on("requestfailed", lambda request: console.append(f"request failed: {request.method} {request.url}"))

    def refused(answer: Response) -> None:
        if answer.status >= 400:
            console.append(f"HTTP {answer.status}: {answer.request.method} {answer.url}")

    tab.on("response", refused)
    yield tab, console
    context.close()


def _open(tab: Page, console: Console, url: str) -> None:
    answer = tab.goto(f"{url}/")
    assert answer is not None and answer.ok, f"GET / answered {answer and answer.status}\n{console}"
    _wait_state(tab, console, "ready", 15_000)


def _state(tab: Page) -> str | None:
    return tab.evaluate("document.body.dataset.state")


def _wait_state(tab: Page, console: Console, state: str, timeout_ms: int = ANSWER_MS) -> None:
    """Wait until the page's ``data-state`` is ``state``; fail early, with what it showed, on another end state."""
    ends = {"done", "error"} - {state}
    try:
        tab.wait_for_function(
            "([want, ends]) => [want, ...ends].includes(document.body.dataset.state)",
            arg=[state, sorted(ends)],
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        pytest.fail(f"the page's state is {_state(tab)!r}, not {state!r}, after {timeout_ms / 1000:.0f} s\n{console}")
    got = _state(tab)
    if got != state:
        error = tab.locator("#error")
        shown = error.text_content() if error.count() else "(no #error element)"
        pytest.fail(f"the page went to state {got!r} instead of {state!r}; #error: {shown!r}\n{console}")


def _check_answer(tab: Page, console: Console, run: Path, expected: dict) -> None:
    """The page's prediction, probability rows and explanation picture against `glassnet predict`'s record."""
    shown = (tab.text_content("#prediction") or "").strip()
    assert shown == str(expected["prediction"]), f"page shows {shown!r}, glassnet predict says {expected}\n{console}"
    classes = Run.open(run).spec.class_names
    rows = tab.locator("#probabilities tr:has(td)")
    assert rows.count() == len(classes), (
        f"#probabilities has {rows.count()} rows with cells, the model has {len(classes)} classes:"
        f" {tab.inner_html('#probabilities')[:500]}\n{console}"
    )
    table = tab.text_content("#probabilities") or ""
    assert all(name in table for name in classes), f"class names {classes} missing from: {table!r}"
    src = tab.get_attribute("#explanation", "src") or ""
    assert src.startswith("data:image/png"), f"#explanation src is {src[:80]!r}\n{console}"


def test_image_upload_shows_the_prediction_of_glassnet_predict(runs, servers, page, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    png = tmp_path / "digit.png"
    Image.fromarray(np.round(digits.images[0] * 255 / 16).astype(np.uint8)).save(png)  # 8x8 grey, 0-255
    [expected] = predict(runs["image"], [str(png)])

    tab, console = page
    _open(tab, console, servers["image"])
    tab.set_input_files("#file", str(png))
    tab.click("#submit")
    _wait_state(tab, console, "done")
    _check_answer(tab, console, runs["image"], expected)


def test_text_shows_the_prediction_of_glassnet_predict(runs, servers, page, tmp_path):
    text = "sunny happy warm lovely"
    lines = tmp_path / "text.txt"
    lines.write_text(text + "\n")
    [expected] = predict(runs["text"], [str(lines)])
    assert expected["prediction"] == "good", expected  # the words of one class only: a sanity check of the run

    tab, console = page
    _open(tab, console, servers["text"])
    tab.fill("#text", text)
    tab.click("#submit")
    _wait_state(tab, console, "done")
    _check_answer(tab, console, runs["text"], expected)


def test_a_refused_upload_shows_an_error(servers, page, tmp_path):
    fake = tmp_path / "x.png"
    fake.write_text("this is text, not a PNG image\n")

    tab, console = page
    _open(tab, console, servers["image"])
    tab.set_input_files("#file", str(fake))
    tab.click("#submit")
    _wait_state(tab, console, "error", 30_000)
    message = (tab.text_content("#error") or "").strip()
    assert message, f"#error is empty after a refusal\n{console}"
    assert tab.locator("#error").is_visible(), f"#error holds {message!r} but is hidden\n{console}"


def test_a_voice_says_the_typed_text_in_the_page(voice_run, page, tmp_path):
    """A text-to-speech run's page: type a text, Speak, and a player holds the WAV the server spoke."""
    run, _, _ = voice_run
    port, log = _free_port(), tmp_path / "voice.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "glassnet", "serve", str(run.path), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MPLBACKEND": "Agg"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"glassnet serve {run.path} did not start:\n{log.read_text()}")
            time.sleep(0.2)
        tab, console = page
        _open(tab, console, url)
        tab.fill("#text", "abc d")
        tab.click("#submit")
        _wait_state(tab, console, "done")
        src = tab.get_attribute("#speech", "src") or ""
        assert src.startswith("blob:"), f"#speech src is {src[:80]!r}\n{console}"
        seconds = tab.evaluate(
            """() => new Promise((resolve) => {
                const audio = document.getElementById("speech");
                if (audio.readyState >= 1) resolve(audio.duration);
                else audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
            })"""
        )
        assert 0.2 < seconds < 3, f"the player's audio lasts {seconds} s\n{console}"
        tab.fill("#text", "xyz")
        tab.click("#submit")
        _wait_state(tab, console, "error")
        assert "never trained on 'x'" in (tab.text_content("#error") or "")
    finally:
        process.terminate()
        process.wait(timeout=10)
