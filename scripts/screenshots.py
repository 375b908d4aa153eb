"""Screenshots of every console page for the README (docs/images/*.png).

    python scripts/screenshots.py              # a fresh demo workspace, the console on a free port, Chromium
    python scripts/screenshots.py --out 目录

Runs ``automation demo`` in a temporary folder, serves it at the demo's simulated time
(2021-12-14 09:00) and photographs each page with Debian's headless Chromium (Selenium).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = (("overview", "/"), ("tasks", "/tasks"), ("task", "/tasks/1"), ("units", "/units"),
         ("unit", "/units/{unit}"), ("send", "/send"), ("collect", "/collect"), ("remind", "/remind"),
         ("report", "/report"))


def chromium(user_dir: str, width: int = 1366, height: int = 900):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={user_dir}", f"--window-size={width},{height}", "--lang=zh-CN"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)


def full_page(driver, path: Path, max_height: int = 2400) -> None:  # type: ignore[no-untyped-def]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, min(max(int(height), 600), max_height))
    driver.save_screenshot(str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args(argv)
    from automation import clock
    from automation.config import load_config
    from automation.demo import run_demo
    from automation.ledger import Ledger
    from automation.web.server import make_server

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="duban-shots-") as tmp:
        result = run_demo(Path(tmp) / "demo")
        config = load_config(result.config_path)
        now = clock.parse("2021-12-14T09:00")
        server = make_server(config, "127.0.0.1", 0, now=lambda: now)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.effective_port}"
        with Ledger.open(config.workspace) as led:
            unit = led.unit_by_name("市商务局")
            assert unit is not None
        driver = chromium(str(Path(tmp) / "chrome"))
        try:
            for name, path in PAGES:
                driver.get(base + path.format(unit=unit.id))
                full_page(driver, args.out / f"console-{name}.png")
                print(args.out / f"console-{name}.png")
        finally:
            driver.quit()
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
