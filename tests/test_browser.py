"""report.html and a plan, opened in a real headless browser (Debian's chromium, which CI installs).

Each page is loaded with a small checking script appended (the pages themselves
have no scripts): on load it logs, as one console line, how many images there
are, which failed to decode, and which tables, figures or images stick out of
the page's text column. The test fails on any other console message (a script
error, a blocked resource …), on a broken image or on content wider than the
page. The screenshots stay in the test's tmp folder for a human to look at, and
a plan is printed to PDF to check that it fits on 1–3 A4 pages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trainmatch.cli import main
from trainmatch.letters import plan_filename

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's `chromium` package)")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]

CHECK = "TRAINMATCH-CHECK "
CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var doc = document.documentElement, body = document.body.getBoundingClientRect();
  var broken = [], wide = [];
  Array.prototype.forEach.call(document.images, function (img) {
    if (!(img.complete && img.naturalWidth > 0)) broken.push(img.alt || img.src.slice(0, 60));
  });
  Array.prototype.forEach.call(document.querySelectorAll("table, figure, img, pre"), function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > body.right + 1 || r.left < body.left - 1) wide.push(el.tagName + (el.id ? "#" + el.id : "") + " " + Math.round(r.width) + "px");
  });
  console.log("%s" + JSON.stringify({images: document.images.length, broken: broken, wide: wide,
    page_overflow: doc.scrollWidth > doc.clientWidth, body_width: Math.round(body.width)}));
});
</script>
"""


def chromium(page: Path, tmp_path: Path, *action: str) -> str:
    """Open ``page`` in headless chromium with ``action`` (--screenshot=…, --print-to-pdf=…); returns its log."""
    profile = tmp_path / f"profile-{page.stem}-{len(list(tmp_path.iterdir()))}"
    env = {**os.environ, "LANG": "C.UTF-8"}
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    return done.stderr


def console(log: str) -> list[str]:
    """The page's console messages in chromium's log (`[…:INFO:CONSOLE:1] "message", source: …`)."""
    return re.findall(r'^\[[^\]]*CONSOLE[^\]]*\] "(.*)", source: ', log, flags=re.MULTILINE)


def instrument(page: Path, folder: Path, name: str) -> Path:
    """A copy of ``page`` in ``folder`` with the checking script appended to its body."""
    checked = folder / f"{name}.html"
    html = page.read_text(encoding="utf-8")
    assert html.count("</body>") == 1
    checked.write_text(html.replace("</body>", CHECK_SCRIPT.replace("%s", CHECK) + "</body>"), encoding="utf-8")
    return checked


def findings(messages: list[str]) -> tuple[dict, list[str]]:
    """The checking script's findings and the page's other console messages."""
    checks = [json.loads(m[len(CHECK) :].replace('\\"', '"')) for m in messages if m.startswith(CHECK)]
    assert len(checks) == 1, messages
    return checks[0], [m for m in messages if not m.startswith(CHECK)]


def open_checked(page: Path, tmp_path: Path, name: str) -> tuple[dict, list[str]]:
    """Screenshot ``page`` (kept as tmp_path/<name>.png) with the checking script; returns its findings
    and every other console message."""
    shot = tmp_path / f"{name}.png"
    log = chromium(instrument(page, tmp_path, name), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert_not_blank(shot)
    return findings(console(log))


def assert_not_blank(png: Path) -> None:
    import numpy as np
    from PIL import Image

    with Image.open(png) as shot:
        image = np.asarray(shot.convert("RGB"), dtype=np.float64) / 255
    assert image.shape[:2] == (2000, 1280)
    rgb = image[..., :3].reshape(-1, 3)
    assert (rgb.min(axis=1) < 0.9).mean() > 0.02  # some ink on the page
    assert len({tuple(px) for px in rgb[:: 97].round(2).tolist()}) > 20  # more than a few flat colours


def pdf_pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "out"
    result = CliRunner().invoke(main, ["assign", str(SAMPLE), "-o", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    return out


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    """The console, image and width checks fail where they should (guards against a changed log format)."""
    page = tmp_path / "page.html"
    page.write_text(
        "<!DOCTYPE html><html><body style='max-width:300px'><p>hi</p>"
        "<img alt='missing' src='data:image/png;base64,AAAA'><table style='width:900px'><tr><td>wide</td></tr></table>"
        "<script>console.error('deliberate'); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    log = chromium(instrument(page, tmp_path, "broken"), tmp_path, f"--screenshot={tmp_path / 'broken.png'}", "--window-size=800,600")
    found, others = findings(console(log))
    assert "deliberate" in others
    assert any("Uncaught ReferenceError" in m for m in others)
    assert found["broken"] == ["missing"] and found["wide"] == ["TABLE 900px"] and found["page_overflow"]


def test_report_renders_in_chromium(outputs: Path, tmp_path: Path) -> None:
    found, others = open_checked(outputs / "report.html", tmp_path, "report")
    assert others == []
    assert found["images"] >= 8 and found["broken"] == []
    assert found["wide"] == [] and not found["page_overflow"]


def test_plan_renders_and_prints_on_a4(outputs: Path, tmp_path: Path) -> None:
    plans = pd.read_csv(outputs / "plans.csv", dtype=str, keep_default_na=False)
    deferred = pd.read_csv(outputs / "deferred.csv", dtype=str, keep_default_na=False)
    # The longest plan with a group session and something deferred: the hardest to fit on paper.
    counts = plans["person_id"].value_counts()
    grouped = set(plans.loc[plans["group"] != "", "person_id"]) & set(deferred["person_id"])
    pid = next(p for p in counts.index if p in grouped)
    page = outputs / "plans" / plan_filename(pid)
    found, others = open_checked(page, tmp_path, "plan")
    assert others == [] and found["broken"] == []
    assert found["wide"] == [] and not found["page_overflow"]
    pdf = tmp_path / "plan.pdf"
    chromium(page, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert 1 <= pdf_pages(pdf) <= 3
