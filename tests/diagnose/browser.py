"""Open an HTML report in headless Chromium the way a reader would, and report what they see.

The report is loaded twice side by side in one page, at a desktop width and at a phone width
(375 CSS px), each in an iframe. A copy of the report gets a probe script (the report itself
has none) that measures, after load: horizontal overflow, every image decoded and its pixels
as displayed (a blank plot has one colour), and whether the answer (cause, culprit, fix) is
laid out visibly inside the viewport in a legible size. The probe posts its measurements to
the outer page, which writes them into its DOM; ``--dump-dom`` returns them and
``--screenshot`` keeps the picture. Console messages come from Chromium's log on stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WIDTHS = {"desktop": 1100, "phone": 375}
HEIGHT = 2400  # of each frame and the screenshot: the answer and the first plots

_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message || (e.target && e.target.tagName) || e.type));
  }, true);
  function pixels(img) {
    var w = Math.max(1, Math.round(img.getBoundingClientRect().width));
    var h = Math.max(1, Math.round(img.getBoundingClientRect().height));
    var c = document.createElement("canvas"); c.width = w; c.height = h;
    var g = c.getContext("2d"); g.drawImage(img, 0, 0, w, h);
    var d = g.getImageData(0, 0, w, h).data, colours = {}, n = 0, inked = 0;
    for (var i = 0; i < d.length; i += 4 * 7) {
      var key = (d[i] >> 4) + "," + (d[i + 1] >> 4) + "," + (d[i + 2] >> 4);
      if (!(key in colours)) { colours[key] = 1; n++; }
      if (d[i] + d[i + 1] + d[i + 2] < 600) inked++;
    }
    return {colours: n, inked: inked / (d.length / 28)};
  }
  function box(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    var r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return {text: el.innerText, left: r.left, right: r.right, width: r.width, height: r.height,
            font: parseFloat(s.fontSize), hidden: s.visibility === "hidden" || s.display === "none"};
  }
  window.addEventListener("load", function () {
    var root = document.documentElement;
    var images = [].map.call(document.images, function (img) {
      var r = img.getBoundingClientRect(), p = pixels(img);
      return {alt: img.alt, natural: [img.naturalWidth, img.naturalHeight], shown: [r.width, r.height],
              left: r.left, right: r.right, colours: p.colours, inked: p.inked};
    });
    var seen = {viewport: root.clientWidth, scroll_width: root.scrollWidth, errors: errors, images: images,
                verdict: box("verdict"), cause: box("cause"), culprit: box("culprit"), fix: box("fix"),
                body_font: parseFloat(getComputedStyle(document.body).fontSize)};
    parent.postMessage({frame: window.name, seen: seen}, "*");
  });
})();
</script>"""

_HARNESS = """<!doctype html><html><head><meta charset="utf-8"><style>
body{{margin:0;display:flex;gap:16px;align-items:flex-start;background:#888}}
iframe{{flex:none;border:0;background:#fff;height:{height}px}}#seen{{display:none}}</style></head><body>
{frames}<pre id="seen"></pre><script>
var seen = {{}};
window.addEventListener("message", function (e) {{
  seen[e.data.frame] = e.data.seen;
  document.getElementById("seen").textContent = JSON.stringify(seen);
}});
</script></body></html>"""


def find_chromium() -> str | None:
    """Debian's `chromium` (apt-get install chromium), or another Chromium/Chrome on PATH."""
    for name in (os.environ.get("NANDOCTOR_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


@dataclass
class Seen:
    frames: dict[str, dict]  # "desktop" / "phone" -> what the probe measured
    console: list[str]  # console messages Chromium logged for the page
    screenshot: Path


def open_report(browser: str, report: Path, workdir: Path, screenshot: Path) -> Seen:
    probed = workdir / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</head>", _PROBE + "</head>", 1), encoding="utf-8")
    harness = workdir / "harness.html"
    return run_harness(browser, probed.name, harness, harness.as_uri(), workdir, screenshot, HEIGHT)


def run_harness(browser: str, src: str, harness: Path, url: str, workdir: Path, screenshot: Path,
                height: int) -> Seen:  # fmt: skip
    """Write the harness (``src`` in one iframe per width) to ``harness``, open it at ``url`` in
    headless Chromium and return what the probe in ``src`` posted, the console and the picture."""
    frames = "".join(
        f'<iframe name="{name}" src="{src}" style="width:{width}px"></iframe>' for name, width in WIDTHS.items()
    )
    harness.write_text(_HARNESS.format(height=height, frames=frames), encoding="utf-8")
    width = sum(WIDTHS.values()) + 16 * (len(WIDTHS) + 1)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
        "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={workdir / 'profile'}", "--virtual-time-budget=10000",
        f"--window-size={width},{height}", f"--screenshot={screenshot}", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    m = re.search(r'<pre id="seen">(.*?)</pre>', done.stdout, re.S)
    if m is None:
        raise AssertionError(f"Chromium returned no measurements (exit {done.returncode}): {done.stderr[-2000:]}")
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Seen(json.loads(text) if text else {}, console, screenshot)
