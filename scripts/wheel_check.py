"""Build the wheel, install it into a fresh virtual environment outside the checkout, and use
it as a user would: ``knowpain diagnose``, ``knowpain validate`` on the shipped default,
and ``knowpain app`` on a free port until its health endpoint answers 200 and (with Debian's
Chromium) the Assess page renders without the toolbar's Deploy button.

Run by ``make wheel-check`` (and by CI). Exits non-zero with a message on the first failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"wheel-check: {' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n"
                 f"{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str, proc: subprocess.Popen, seconds: float = 90) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"wheel-check: knowpain app exited {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return resp.read().decode()
        except OSError:
            time.sleep(0.3)
    sys.exit(f"wheel-check: {url} did not answer 200 within {seconds:.0f} s")


def browser_check(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("Why is my low back sore after deadlifts?").first.wait_for(
            timeout=60_000)
        page.get_by_text("not a diagnosis").first.wait_for(timeout=30_000)
        if page.get_by_text("Traceback").count() or page.locator(
                '[data-testid="stException"]').count():
            sys.exit("wheel-check: the installed app shows an exception")
        if page.get_by_role("button", name="Deploy").count():
            sys.exit("wheel-check: the installed app shows a Deploy button")
        browser.close()


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="knowpain-wheel-"))
    try:
        dist = tmp / "dist"
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist),
             str(ROOT)], cwd=tmp)
        (wheel,) = dist.glob("knowpain-*.whl")
        run([sys.executable, "-m", "venv", str(tmp / "venv")], cwd=tmp)
        bin_ = tmp / "venv" / "bin"
        run([str(bin_ / "pip"), "install", "--quiet", str(wheel)], cwd=tmp)
        env = {**os.environ, "KNOWPAIN_HOME": str(tmp / "home"), "HOME": str(tmp / "home")}
        knowpain = str(bin_ / "knowpain")
        out = run([knowpain, "diagnose", "training_age=first_sessions", "low_back_soreness=mild"],
                  cwd=tmp, env=env).stdout
        assert "not a diagnosis" in out.lower(), out
        default = run([knowpain, "where", "default"], cwd=tmp, env=env).stdout.strip()
        if str(ROOT) in default or "site-packages" not in default:
            sys.exit(f"wheel-check: the shipped default resolves to {default}, not the install")
        print(run([knowpain, "validate", default], cwd=tmp, env=env).stdout.splitlines()[-1])
        port = free_port()
        app = subprocess.Popen(
            [knowpain, "app", "--server.port", str(port), "--server.headless", "true",
             "--server.address", "127.0.0.1"],
            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_ok(f"{base}/_stcore/health", app).strip() == "ok"
            print(f"knowpain app answered on port {port}: health ok")
            if CHROMIUM.exists():
                browser_check(base)
                print("the Assess page rendered in Chromium, without a Deploy button")
            else:
                print("no /usr/bin/chromium: the page itself was not rendered")
        finally:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
        time.sleep(0.5)
        try:  # stopping `knowpain app` must stop the server, not orphan it
            urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).close()
            sys.exit("wheel-check: the server kept serving after knowpain app was stopped")
        except OSError:
            print("stopping knowpain app stopped the server")
        print("wheel-check: ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
