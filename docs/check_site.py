"""Open the built site in headless Chromium and check what a reader would see.

    python docs/check_site.py [--site site] [--chromium /usr/bin/chromium]

For the home page, a tutorial and an API page: the math is typeset (every ``.math`` element holds
MathJax's SVG output, none of it an error), every image has loaded (``naturalWidth > 0``), the
console shows no error or uncaught exception, and no request goes anywhere but ``file://`` (or
``data:``/``blob:`` URLs made in the page).  The search page must find results for a query.  A
screenshot of each page goes to ``site/_checks/``.  Exit status 0 when every check passes, else 1.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``): JSON
messages separated by NUL bytes on file descriptors 3 and 4.  That needs only the standard library
and the browser Debian ships, where a driver library would bring its own protocol client, version
pinning and, often, its own browser download.
"""

import argparse
import base64
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--host-resolver-rules=MAP * ~NOTFOUND"]     # belt and braces: no name resolves anyway

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


class Browser:
    """A Chromium process and a blocking DevTools client on its pipe."""

    def __init__(self, executable, timeout=60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="minigen-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4; move our ends out of the way
        # first, so that the dup2 calls in the child cannot overwrite one another.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

        def child_fds():                  # runs in the child, before exec; no thread exists yet
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(3, 4, high_r, high_w), preexec_fn=child_fds)  # noqa: PLW1509
        for fd in (to_browser_r, from_browser_w, high_r, high_w):
            os.close(fd)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._next_id = 0
        self._replies = {}
        self._events = queue.Queue()
        self._lock = threading.Condition()
        self._stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.process.stderr),
                         daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                with self._lock:
                    self._replies[None] = "closed"
                    self._lock.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies[message["id"]] = message
                        self._lock.notify_all()
                else:
                    self._events.put(message)

    def send(self, method, params=None, session=None):
        """Send one command and wait for its reply; a protocol error raises RuntimeError."""
        self._next_id += 1
        ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._lock:
            while ident not in self._replies:
                if None in self._replies:
                    log = b"".join(self._stderr).decode(errors="replace")[-2000:]
                    raise RuntimeError(f"chromium exited: {log}")
                if not self._lock.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"chromium did not answer {method} in {self.timeout:.0f} s")
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def events(self):
        """Every event received so far (and not yet taken)."""
        taken = []
        while True:
            try:
                taken.append(self._events.get_nowait())
            except queue.Empty:
                return taken

    def wait_event(self, method, session, timeout, seen):
        """Wait for an event; every event read meanwhile is appended to ``seen``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        raise RuntimeError(f"no {method} within {timeout:.0f} s")

    def close(self):
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page itself reports once loaded; MathJax typesets asynchronously, so wait for it first.
PAGE_STATE = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const images = [...document.images];
  for (const img of images) { img.loading = "eager"; try { await img.decode(); } catch (e) {} }
  const math = [...document.querySelectorAll(".math")];
  return {
    title: document.title,
    math: math.length,
    mathTypeset: math.filter(m => m.querySelector("mjx-container svg")).length,
    mathErrors: document.querySelectorAll('[data-mml-node="merror"], mjx-merror').length,
    images: images.map(i => ({src: i.getAttribute("src"), width: i.naturalWidth})),
  };
})()
"""

# Sphinx's search ends by writing "Search finished, found N pages..." into .search-summary.
SEARCH_RESULTS = """
new Promise(resolve => {
  const start = Date.now();
  const poll = () => {
    const summary = document.querySelector(".search-summary");
    if ((summary && /finished/i.test(summary.textContent)) || Date.now() - start > 15000)
      resolve(document.querySelectorAll("#search-results li").length);
    else setTimeout(poll, 100);
  };
  poll();
})
"""


def evaluate(browser, session, expression):
    result = browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
    return result["result"].get("value")


def problems_in(events, session):
    """Console errors, uncaught exceptions and requests that leave file:// among ``events``."""
    found = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(LOCAL_SCHEMES):
                found.append(f"request leaves file://: {url}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            found.append(f"console error: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            found.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"console error: {params['entry']['text']} ({params['entry'].get('url')})")
    return found


def check_page(browser, path, shot, need_math, need_images, search=None):
    """Load one page in a fresh tab; return (list of problems, summary line)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget",
                           {"targetId": target, "flatten": True})["sessionId"]
    seen = []
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", {}, session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                     session)
        url = path.resolve().as_uri() + (f"?q={search}" if search else "")
        browser.send("Page.navigate", {"url": url}, session)
        browser.wait_event("Page.loadEventFired", session, browser.timeout, seen)
        state = evaluate(browser, session, PAGE_STATE)
        problems = []
        if need_math and state["math"] == 0:
            problems.append("no math on the page (expected some)")
        if state["mathTypeset"] != state["math"]:
            problems.append(f"math not typeset: {state['math'] - state['mathTypeset']} of "
                            f"{state['math']} elements hold no MathJax SVG")
        if state["mathErrors"]:
            problems.append(f"{state['mathErrors']} MathJax errors (bad TeX) on the page")
        if need_images and not state["images"]:
            problems.append("no image on the page (expected some)")
        for image in state["images"]:
            if image["width"] <= 0:
                problems.append(f"image not loaded: {image['src']}")
        results = None
        if search:
            results = evaluate(browser, session, SEARCH_RESULTS)
            if not results:
                problems.append(f"searching {search!r} found nothing")
        # Scroll the first typeset formula into view, so the screenshot shows the math.
        evaluate(browser, session, "(() => { const m = document.querySelector('mjx-container');"
                                   " if (m && !location.pathname.endsWith('index.html'))"
                                   " m.scrollIntoView({block: 'center'}); return true; })()")
        time.sleep(0.3)
        png = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        shot.write_bytes(base64.b64decode(png))
        time.sleep(0.2)                                      # late console messages
        seen += browser.events()
        problems += problems_in(seen, session)
        summary = (f"{state['title']!r}: {state['mathTypeset']}/{state['math']} formulas typeset, "
                   f"{sum(i['width'] > 0 for i in state['images'])}/{len(state['images'])} images"
                   + (f", {results} search results" if search else "") + f", screenshot {shot}")
        return problems, summary
    finally:
        browser.send("Target.closeTarget", {"targetId": target})


# What a page would load by itself (not a link a reader may follow): an absolute http(s) or
# protocol-relative URL in one of these attributes, or in a stylesheet's url(...) / @import.
_LOADS = re.compile(r"""<(script|img|iframe|source|audio|video|embed|input)\b[^>]*?"""
                    r"""\s(src|poster)=["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE)
_LINKS = re.compile(r"""<link\b[^>]*>""", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s]+)""",
                      re.IGNORECASE)
_LOADED_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch",
                "icon", "shortcut", "manifest", "apple-touch-icon"}


def static_external_loads(site):
    """Every resource an HTML or CSS file of the site would fetch from the network, as
    ``file: url`` lines: a second net under the browser check, covering every page."""
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css") or "_checks" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        urls = [m.group(3) for m in _LOADS.finditer(text)] if path.suffix == ".html" else []
        if path.suffix == ".html":
            for tag in _LINKS.findall(text):
                rel = re.search(r"""rel=["']?([^"'>]+)""", tag, re.IGNORECASE)
                href = re.search(r"""href=["']?((?:https?:)?//[^"'\s>]+)""", tag, re.IGNORECASE)
                if href and rel and _LOADED_RELS & set(rel.group(1).lower().split()):
                    urls.append(href.group(1))
        urls += [m.group(1) for m in _CSS_URL.finditer(text)]
        found += [f"{path.relative_to(site)}: {url}" for url in urls]
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("site"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--tutorial", default="tutorials/05_vae.html")
    parser.add_argument("--api", default="api/minigen.losses.html")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        sys.exit(f"check_site: {args.site}/index.html is missing; build it with bash docs/build.sh")
    if not Path(args.chromium).exists():
        sys.exit(f"check_site: no Chromium at {args.chromium} (apt-get install chromium)")
    checks = args.site / "_checks"
    checks.mkdir(exist_ok=True)
    pages = [("home", "index.html", {"need_math": False, "need_images": True}),
             ("tutorial", args.tutorial, {"need_math": True, "need_images": True}),
             ("api", args.api, {"need_math": True, "need_images": False}),
             ("search", "search.html",
              {"need_math": False, "need_images": False, "search": "gradcheck"})]
    # The other pages of the navigation and every other tutorial too: their images load, their
    # math typesets, nothing leaves file://.
    for page in ("results.html", "performance.html", "architecture.html", "cli.html",
                 "tutorials/index.html", "api/index.html"):
        pages.append((page.replace("/", "-").removesuffix(".html"), page,
                      {"need_math": False,
                       "need_images": page in ("results.html", "performance.html")}))
    (checks / "tutorials").mkdir(exist_ok=True)
    for path in sorted((args.site / "tutorials").glob("[0-9][0-9]_*.html")):
        page = path.relative_to(args.site).as_posix()
        if page != args.tutorial:
            needs = {"need_math": False, "need_images": False}
            pages.append((f"tutorials/{path.stem}", page, needs))
    failed = 0
    external = static_external_loads(args.site)
    print(f"{'FAIL' if external else 'ok  '} no page or stylesheet of the site loads from the "
          f"network ({sum(1 for _ in args.site.rglob('*.html'))} pages read)")
    for line in external:
        print(f"     - {line}")
    failed += bool(external)
    browser = Browser(args.chromium)
    try:
        for name, page, needs in pages:
            path = args.site / page
            if not path.exists():
                print(f"FAIL {name}: {path} does not exist")
                failed += 1
                continue
            problems, summary = check_page(browser, path, checks / f"{name}.png", **needs)
            print(f"{'FAIL' if problems else 'ok  '} {name} {page}: {summary}")
            for problem in problems:
                print(f"     - {problem}")
            failed += bool(problems)
    finally:
        browser.close()
    print(f"check_site: {len(pages) + 1 - failed} of {len(pages) + 1} checks pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
