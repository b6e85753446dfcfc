#!/usr/bin/env python3
"""`ccem explore` in a real browser: headless Chromium driven through chromedriver (the W3C
WebDriver protocol, spoken with the Python standard library only).

  scripts/browser_test.py [--bin target/release/ccem] [--shots DIR]

Through each view:
  Theory   moves N, waits for the page, reads the displayed c*: it must equal the c_star line
           of `ccem theory`'s table; the Gram and phase-map canvases must have changed. Then a
           loss of the zoo (dcl): its readout and table must equal `ccem theory --loss dcl`'s.
  Inspect  uploads a .npy pair; the report shown must equal `ccem inspect`'s output.
  Train    starts a run, sees progress, stops it: termination `stopped`; then a short run to
           the end, whose table must equal `ccem optimize`'s.
A screenshot of each view goes to target/explore-*.png (and to --shots DIR, e.g. docs/).

Without `chromium` or `chromedriver` on PATH it prints SKIPPED and the reason and exits 0,
unless CCEM_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser is a failure.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    """A minimal W3C WebDriver client."""

    def __init__(self, chromedriver, chromium):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [chromedriver, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while True:
            try:
                self._req("GET", "/status")
                break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError("chromedriver did not start")
                time.sleep(0.2)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100",
                "--disable-dev-shm-usage", "--force-device-scale-factor=1"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}}
        self.session = self._req("POST", "/session", caps)["sessionId"]

    def _req(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.read().decode(errors='replace')}")

    def cmd(self, method, path, body=None):
        return self._req(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        v = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(v.values()))

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear:
            self.cmd("POST", f"/element/{el}/clear", {})
        self.cmd("POST", f"/element/{el}/value", {"text": text})

    def text(self, css):
        return self.cmd("GET", f"/element/{self.find(css)}/text")

    def screenshot(self, path):
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def wait(self, what, cond, timeout=60):
        deadline = time.time() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def quit(self):
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def table_value(text, key):
    for line in text.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == key:
            return parts[1].strip()
    raise AssertionError(f"no {key} in\n{text}")


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ccem"))
    ap.add_argument("--shots", help="also copy the screenshots to this directory (e.g. docs)")
    a = ap.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        missing = " and ".join(n for n, p in [("chromium", chromium), ("chromedriver", chromedriver)] if not p)
        if os.environ.get("CCEM_REQUIRE_BROWSER") == "1":
            print(f"browser test FAILED: {missing} not on PATH (CCEM_REQUIRE_BROWSER=1; "
                  "install: apt-get install chromium chromium-driver)", file=sys.stderr)
            return 1
        print(f"browser test SKIPPED: {missing} not on PATH (apt-get install chromium chromium-driver)")
        return 0
    if not os.path.exists(a.bin):
        print(f"browser test FAILED: no binary {a.bin} (cargo build --release)", file=sys.stderr)
        return 1

    out_dir = os.path.join(ROOT, "target")
    os.makedirs(out_dir, exist_ok=True)
    shots = []
    work = tempfile.mkdtemp(prefix="ccem-browser-")
    server = subprocess.Popen([a.bin, "explore", "--port", "0"], stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        url = server.stdout.readline().strip().split(" ", 2)[-1]
        assert url.startswith("http://127.0.0.1:"), url
        driver = Driver(chromedriver, chromium)
        d = driver

        # ---- Theory ----
        d.get(url + "?view=theory&n=10&t=1")
        d.wait("the page", lambda: d.js("return document.body.dataset.ready === '1' && "
                                        "!!document.body.dataset.theoryQuery"))
        d.wait("c*", lambda: d.text("#th-c_star").strip() not in ("", "-"))
        gram0 = d.js("return document.getElementById('th-gram').toDataURL()")
        phase0 = d.js("return document.getElementById('th-phase-map').toDataURL()")
        c0 = d.text("#th-c_star")
        assert c0 == table_value(run([a.bin, "theory", "--n", "10", "--t", "1"]), "c_star"), c0
        d.type("#th-n", "12")
        d.wait("the theory for N = 12", lambda: "n=12" in (d.js("return document.body.dataset.theoryQuery") or ""))
        c1 = d.text("#th-c_star")
        expected = table_value(run([a.bin, "theory", "--n", "12", "--t", "1"]), "c_star")
        assert c1 == expected, f"page c* {c1} != ccem theory's {expected}"
        assert d.text("#th-phase") == table_value(run([a.bin, "theory", "--n", "12", "--t", "1"]), "phase")
        d.wait("the Gram heatmap to change", lambda: d.js("return document.getElementById('th-gram').toDataURL()") != gram0)
        d.wait("the phase map to change", lambda: d.js("return document.getElementById('th-phase-map').toDataURL()") != phase0)
        assert "n=12" in d.js("return location.search"), "the controls live in the URL"
        # A bad value: the library's message on the page.
        d.type("#th-t", "-1")
        d.wait("the error", lambda: d.js("return !document.getElementById('th-error').hidden"))
        assert "t" in d.text("#th-error")
        d.type("#th-t", "1")
        d.wait("the error to clear", lambda: d.js("return document.getElementById('th-error').hidden"))
        d.wait("c* again", lambda: d.text("#th-c_star") == expected)
        time.sleep(0.3)
        shots.append(("explore-theory.png", None))
        d.screenshot(os.path.join(out_dir, "explore-theory.png"))
        print(f"theory: c* {c0} (N = 10) -> {c1} (N = 12), equal to ccem theory's table; charts redrawn")
        # A loss of the zoo (SPEC §9): its own parameters shown, the values of `ccem theory --loss`.
        d.js("const s = document.getElementById('th-loss'); s.value = 'dcl'; "
             "s.dispatchEvent(new Event('change'));")
        d.wait("the tau input", lambda: d.js("return !document.getElementById('th-tau').parentElement.hidden"))
        assert d.js("return document.getElementById('th-t').parentElement.hidden"), "dcl has no t"
        d.type("#th-tau", "0.3")
        d.wait("the theory of dcl", lambda: "loss=dcl" in (d.js("return document.body.dataset.theoryQuery") or "")
               and "tau=0.3" in d.js("return document.body.dataset.theoryQuery"))
        zoo = run([a.bin, "theory", "--loss", "dcl", "--n", "12", "--tau", "0.3"])
        for key, el in [("c_star", "#th-c_star"), ("s_neg", "#th-s_neg"), ("loss", "#th-loss-value"), ("phase", "#th-phase")]:
            d.wait(f"dcl's {key}", lambda: d.text(el) == table_value(zoo, key))
        d.wait("the phase note", lambda: "dcl" in d.text("#th-phase-legend"))
        assert d.js("return document.getElementById('th-table').textContent") == zoo
        print(f"theory: dcl at tau = 0.3: c* {d.text('#th-c_star')}, the values of ccem theory --loss dcl")

        # ---- Inspect ----
        u, v = os.path.join(work, "U.npy"), os.path.join(work, "V.npy")
        run([a.bin, "optimize", "--n", "12", "--d", "12", "--t", "2", "--b", "1", "--steps", "300",
             "--save-u", u, "--save-v", v])
        d.click("#tab-inspect")
        d.type("#in-u", u, clear=False)
        d.type("#in-v", v, clear=False)
        d.type("#in-t", "2")
        d.type("#in-b", "1")
        d.click("#in-go")
        d.wait("the report", lambda: d.text("#in-report").strip() != "")
        shown = d.js("return document.getElementById('in-report').textContent")
        cli = run([a.bin, "inspect", "--u", u, "--v", v, "--t", "2", "--b", "1"])
        assert shown == cli, f"page report:\n{shown}\n!= ccem inspect:\n{cli}"
        assert d.js("return document.querySelectorAll('#in-hist canvas').length") > 0
        shots.append(("explore-inspect.png", None))
        d.screenshot(os.path.join(out_dir, "explore-inspect.png"))
        print("inspect: the uploaded pair's report equals ccem inspect's")

        # ---- Train: start, see progress, stop ----
        d.click("#tab-train")
        d.type("#tr-n", "24")
        d.type("#tr-t", "2")
        d.type("#tr-b", "1")
        d.type("#tr-steps", "5000000")
        d.type("#tr-gradtol", "0")
        d.click("#tr-start")
        d.wait("progress", lambda: int(d.js("return document.body.dataset.trainSteps || '0'")) >= 5)
        d.click("#tr-stop")
        d.wait("the stopped run", lambda: d.js("return document.body.dataset.trainState") == "stopped")
        assert table_value(d.js("return document.getElementById('tr-table').textContent"), "termination") == "stopped"
        print("train: progress streamed, stopped from the page: termination stopped")
        # A short run to the end (the docs' picture): the table equals ccem optimize's.
        d.type("#tr-n", "16")
        d.type("#tr-steps", "2000")
        d.click("#tr-start")
        d.wait("the finished run", lambda: d.js("return document.body.dataset.trainState") not in ("running", "stopped"), 120)
        shown = d.js("return document.getElementById('tr-table').textContent")
        command = d.text("#tr-command").split()[1:]
        cli = run([a.bin] + command)
        assert shown == cli, f"page:\n{shown}\n!= {' '.join(command)}:\n{cli}"
        time.sleep(0.3)
        shots.append(("explore-train.png", None))
        d.screenshot(os.path.join(out_dir, "explore-train.png"))
        print(f"train: `ccem {' '.join(command)}` ran to the end; its table equals the command's")
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    if a.shots:
        for name, _ in shots:
            shutil.copy(os.path.join(out_dir, name), os.path.join(a.shots, name))
    print("browser test passed; screenshots in target/: " + ", ".join(n for n, _ in shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
