"""Open a page of the built rules site in headless Chromium, served over HTTP from 127.0.0.1 as a
published site is (the theme's search runs in a Web Worker, which browsers refuse on file://).

The page is loaded in two iframes, at a desktop and at a phone width; a probe script added to a
copy of the page measures what a reader sees and posts it to the outer page, which
``--dump-dom`` returns. Console messages come from Chromium's log on stderr.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

WIDTHS = {"desktop": 1100, "phone": 375}
HEIGHT = 1600

_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || e.type));
  }, true);
  function box(el) {
    if (!el) return null;
    var r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return {text: el.innerText, left: r.left, right: r.right, top: r.top, width: r.width, height: r.height,
            font: parseFloat(s.fontSize), family: s.fontFamily,
            hidden: s.visibility === "hidden" || s.display === "none"};
  }
  window.addEventListener("load", function () {
    var root = document.documentElement;
    var main = document.querySelector("[role=main]");
    var seen = {viewport: root.clientWidth, scroll_width: root.scrollWidth, errors: errors,
                title: box(main && main.querySelector("h1")),
                sections: [].map.call(main ? main.querySelectorAll("h2") : [], function (h) { return box(h); }),
                code: box(main && main.querySelector("pre")),
                nav: box(document.querySelector(".wy-nav-side")),
                stylesheets: document.styleSheets.length};
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


@dataclass
class Seen:
    frames: dict[str, dict]  # "desktop" / "phone" -> what the probe measured
    console: list[str]
    screenshot: Path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def open_page(browser: str, site: Path, page: str, workdir: Path, screenshot: Path) -> Seen:
    """Open ``page`` (a path inside the built ``site``) as a reader would; ``site`` gets a probed
    copy of the page and a harness beside it."""
    original = site / page
    probed = original.with_name(original.stem + ".probed.html")
    probed.write_text(original.read_text(encoding="utf-8").replace("</head>", _PROBE + "</head>", 1), encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        src = base + probed.relative_to(site).as_posix()
        frames = "".join(
            f'<iframe name="{name}" src="{src}" style="width:{width}px"></iframe>' for name, width in WIDTHS.items()
        )
        (site / "harness.html").write_text(_HARNESS.format(height=HEIGHT, frames=frames), encoding="utf-8")
        width = sum(WIDTHS.values()) + 16 * (len(WIDTHS) + 1)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={workdir / 'profile'}", "--virtual-time-budget=10000",
            f"--window-size={width},{HEIGHT}", f"--screenshot={screenshot}", "--dump-dom", base + "harness.html",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    finally:
        server.shutdown()
        server.server_close()
    m = re.search(r'<pre id="seen">(.*?)</pre>', done.stdout, re.S)
    if m is None:
        raise AssertionError(f"Chromium returned no measurements (exit {done.returncode}): {done.stderr[-2000:]}")
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Seen(json.loads(text) if text else {}, console, screenshot)
