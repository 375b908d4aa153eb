"""Serving the console: waitress (a production WSGI server on Windows and Linux alike).

It listens on 127.0.0.1 unless told otherwise; on any other address it refuses to start until
the ledger holds at least one account.  Ctrl-C stops it cleanly: no new requests, and a running
background job (a collect, a send) finishes its work first.
"""

from __future__ import annotations

import datetime as dt
import logging
import webbrowser
from collections.abc import Callable
from typing import Any

from automation.config import Config
from automation.errors import AutomationError
from automation.ledger import open_workspace
from automation.web.security import is_loopback

__all__ = ["check_address", "make_server", "serve", "console_url"]

log = logging.getLogger(__name__)


def check_address(config: Config, host: str) -> None:
    """Refuse a non-loopback address while no account exists (anyone on the network would be admin)."""
    if is_loopback(host):
        return
    _ws, ledger = open_workspace(config, create=False)
    try:
        count = ledger.account_count()
    finally:
        ledger.close()
    if not count:
        raise AutomationError(
            f"要在 {host} 上（本机以外也能访问）开放工作台，须先添加至少一个账号：automation web --add-user 账号名 "
            "[--role admin|viewer]。只在本机使用时不加 --host（默认 127.0.0.1）。")


def console_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/"


def make_server(config: Config, host: str = "127.0.0.1", port: int = 8000, *,
                now: Callable[[], dt.datetime] | None = None, threads: int = 8) -> Any:
    """The app on a waitress server (not started: call ``.run()``; ``.close()`` stops it)."""
    from waitress import create_server

    from automation.web.app import create_app

    check_address(config, host)
    _ws, ledger = open_workspace(config, create=False)  # syncs the registry once; pages only read it
    ledger.require_batch(config.batch.title)
    ledger.close()
    app = create_app(config, now=now, loopback=is_loopback(host))
    server = create_server(app, host=host, port=port, threads=threads, ident="duban",
                           max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + (1 << 20))
    server.duban_app = app  # type: ignore[attr-defined]
    return server


def serve(config: Config, host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False,
          now: Callable[[], dt.datetime] | None = None, say: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C."""
    server = make_server(config, host, port, now=now)
    url = console_url(host, server.effective_port)
    say(f"督办工作台已启动：{url}（按 Ctrl-C 停止）")
    if open_browser:
        webbrowser.open(url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        console = server.duban_app.config["DUBAN"]
        if console.jobs.running():
            say("正在等待后台任务完成后退出……")
        console.jobs.wait()
        say("工作台已停止。")
