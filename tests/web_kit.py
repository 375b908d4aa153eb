"""Shared parts of the console tests: a demo workspace (made once, copied per test), the server on a
free loopback port, and Debian's headless Chromium."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config, load_config

DEMO_NOW = clock.parse("2021-12-14T09:00")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def have_chromium() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def make_demo(root: Path) -> Path:
    """``automation demo`` in ``root/demo``; returns its config path."""
    from automation.demo import run_demo

    return run_demo(root / "demo").config_path


def copy_demo(src_config: Path, dest: Path) -> Config:
    """A private copy of a demo workspace (tests that change it must not share one)."""
    shutil.copytree(src_config.parent, dest)
    return load_config(dest / "config.toml")


@contextlib.contextmanager
def running_server(config: Config, now: Any = DEMO_NOW) -> Iterator[str]:
    """The console served by waitress on a free 127.0.0.1 port; yields its base URL."""
    from automation.web.server import make_server

    server = make_server(config, "127.0.0.1", 0, now=lambda: now, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        server.duban_app.config["DUBAN"].jobs.wait(60)
        thread.join(5)


def chromium(user_dir: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={user_dir}", "--window-size=1280,900"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def filled_return(config: Config, unit: str, out: Path, status: str = "已完成") -> Path:
    """The unit's issued workbook filled in as the unit would (every task ``status``)."""
    from automation.demo import fill_returned_workbook
    from automation.ledger import Ledger
    from automation.workbook.template import layout_for

    with Ledger.open(config.workspace) as led:
        batch = led.require_batch(config.batch.title)
        row = led.unit_by_name(unit)
        assert row is not None
        issued = Path(led.latest_issue_paths(batch.id)[row.id])
        tasks = sorted({a.task for a in led.unit_answers(batch.id, row.id)})
    answers = {t: {"status": status, "progress": "已按要求完成，相关信息已在门户网站公开。"} for t in tasks}
    fill_returned_workbook(issued, out, answers, layout=layout_for(config), contact="王五", phone="0599-1234567")
    return out
