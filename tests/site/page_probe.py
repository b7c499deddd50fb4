"""Open a page of the built rules site in headless Chromium, served over HTTP from 127.0.0.1 as a
published site is (the theme's search runs in a Web Worker, which browsers refuse on file://).

The page is loaded in two iframes, at a desktop and at a phone width; a probe script added to a
copy of the page measures what a reader sees and posts it to the outer page, which
``--dump-dom`` returns. Console messages come from Chromium's log on stderr.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from tests.diagnose.browser import Seen, run_harness

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
        harness = site / "harness.html"
        return run_harness(browser, src, harness, base + "harness.html", workdir, screenshot, HEIGHT)
    finally:
        server.shutdown()
        server.server_close()
