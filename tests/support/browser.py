"""Headless Chromium (Debian's ``chromium``, installed by tests/tools/install-chromium.sh) for the HTML tests.

    page = open_page(path, screenshot=tmp_path / "shot.png")
    page.console        # every console message the page produced (its JS errors are among them)
    page.dom            # the DOM after rendering (--dump-dom)

Console messages come from Chromium's own log (``--enable-logging=stderr --v=0`` prints each as a
``:CONSOLE:`` line, errors such as "Uncaught ReferenceError" included; checked against a page that
throws in tests/e2e/test_report_browser.py). When Chromium cannot start, :class:`BrowserError` says why.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 120
_CONSOLE = re.compile(r":CONSOLE(?::\d+)?\] (.*)$")


class BrowserError(AssertionError):
    """Chromium is missing or failed: the message says what happened and how to fix it."""


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]
    log: str


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise BrowserError("chromium is not installed: run `make tools` (tests/tools/install-chromium.sh installs "
                           "Debian's chromium package)")
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise BrowserError(f"chromium did not finish in {TIMEOUT}s: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        raise BrowserError(f"chromium exited {done.returncode}: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return done


def open_page(path: Path, *, screenshot: Path | None = None, size: str = "1280,2000") -> Page:
    """Render ``path`` (a local HTML file): its DOM and console, and a PNG screenshot when asked."""
    url = path.resolve().as_uri()
    done = _run(["--dump-dom", url])
    if screenshot is not None:
        shot = _run([f"--screenshot={screenshot}", f"--window-size={size}", url])
        if not screenshot.exists() or screenshot.stat().st_size == 0:
            raise BrowserError(f"chromium wrote no screenshot to {screenshot}:\n{shot.stderr[-3000:]}")
    console = [m.group(1) for line in done.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return Page(done.stdout, console, done.stderr)
