"""The day report opened in a real headless browser (Debian's chromium): every chart renders,
nothing is fetched, and the console stays quiet.

The report itself has no script. The test appends one probe script to a copy: on load it
measures each chart's SVG box and counts its marks, and logs one line, which proves the
console capture works; any other console line (a failed fetch, a parse error) fails.
`.ci/run` installs chromium when it is missing; the test skips only where it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from policy_engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROBE = """<script>
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll("figure")].map((f) => {
    const svg = f.querySelector("svg");
    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    const marks = svg ? svg.querySelectorAll("path, use, rect, line, polyline, text").length : 0;
    return { id: f.id, width: box.width, height: box.height, marks };
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(figures);
  document.body.appendChild(out);
  console.log("probe ran");
});
</script>"""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "chromium is not installed here (.ci/run installs it: `apt-get install -y chromium`)"
        )
    return found


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    code = 0
    try:
        main(
            [
                "report",
                str(ROOT / "policies" / "portfolio.yaml"),
                str(ROOT / "examples" / "events.jsonl"),
                "--policy",
                str(ROOT / "examples" / "portfolio-v2.yaml"),
                "-o",
                str(out),
            ]
        )
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0
    return out


def test_every_chart_renders_and_the_console_is_quiet(report: Path, tmp_path: Path) -> None:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    done = browse(probed, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout)
    assert found, done.stdout[-2000:]
    figures = json.loads(found.group(1).replace("&quot;", '"'))
    assert [f["id"] for f in figures] == [
        "portfolio-heat",
        "cohort-heat",
        "decisions",
        "decisions-what-if",
        "reconciliation",
    ]
    for figure in figures:
        assert figure["width"] > 300 and figure["height"] > 100, figure
        assert figure["marks"] > 20, figure
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert len(console) == 1 and '"probe ran"' in console[0], console


def test_the_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    from PIL import Image  # matplotlib's own dependency

    shot = tmp_path / "shot.png"
    browse(report, tmp_path / "profile", "--window-size=1280,1600", f"--screenshot={shot}")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1600)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # charts, not a blank page
    white = max(count for count, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.95 * 1280 * 1600


def test_the_page_fetches_nothing(report: Path) -> None:
    html = report.read_text()
    assert "<script" not in html and "<link" not in html and "<img" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    for ref in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert ref.startswith("#"), ref  # only references inside the page (SVG <use>)
