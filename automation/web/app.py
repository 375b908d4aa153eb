"""The console's Flask application: each page parses the request, calls one library function, renders.

Page data comes from :mod:`automation.progress.views`, :mod:`automation.agenda`,
:mod:`automation.tasks.preview`, :mod:`automation.mail.preview`; actions from
:mod:`automation.actions`; ``/api/status`` is :func:`automation.progress.status.status_summary`
itself.  Who may do what is :mod:`automation.web.security`; long actions run in
:mod:`automation.web.jobs`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from automation import clock
from automation.config import Config
from automation.errors import AutomationError
from automation.ledger import Ledger
from automation.progress.summary import LEVEL_NAMES, fmt_time
from automation.web import charts, security
from automation.web.jobs import KINDS, Busy, JobRunner

__all__ = ["create_app", "Console"]

SESSION_HOURS = 12


@dataclass
class Console:
    """What every request needs: the config, the clock, the jobs, whether we listen on loopback only."""

    config: Config
    clock: Callable[[], dt.datetime] = clock.now
    loopback: bool = True
    jobs: JobRunner = field(init=False)
    _local: threading.local = field(default_factory=threading.local, init=False)

    def __post_init__(self) -> None:
        self.jobs = JobRunner(self.open_ledger)

    def open_ledger(self) -> Ledger:
        return Ledger.open(self.config.workspace)

    def ledger(self) -> Ledger:
        """This thread's connection (waitress keeps a fixed pool of threads, so one each)."""
        led = getattr(self._local, "ledger", None)
        if led is None:
            led = self._local.ledger = self.open_ledger()
        return led


def create_app(config: Config, *, now: Callable[[], dt.datetime] | None = None, loopback: bool = True) -> Flask:
    app = Flask(__name__)
    console = Console(config, now or clock.now, loopback)
    max_mb = config.collect.max_file_mb * config.collect.max_files + 1
    app.config.update(
        SECRET_KEY=os.urandom(32), SESSION_COOKIE_NAME="duban_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=int(max_mb * (1 << 20)),
        MAX_FORM_PARTS=config.collect.max_files + 20, DUBAN=console,
    )
    from automation.collect.pipeline import result_line

    app.jinja_env.globals.update(csrf_token=security.csrf_token, fmt_time=fmt_time, LEVEL_NAMES=LEVEL_NAMES,
                                 charts=charts, KINDS=KINDS, result_line=result_line)
    app.jinja_env.filters["pct"] = lambda v: f"{v:.1%}"
    app.after_request(security.security_headers)

    @app.before_request
    def guard() -> Any:
        g.console = console
        g.now = console.clock()
        if console.loopback and request.host.rsplit(":", 1)[0] not in security.LOOPBACK_NAMES:
            abort(400)  # another name pointing here (DNS rebinding) on a console meant for this PC only
        if request.endpoint == "static":
            return None
        ledger = console.ledger()
        g.open_access = console.loopback and ledger.account_count() == 0
        g.account, g.role = _who(ledger)
        if g.account is None and request.endpoint not in ("login", "logout"):
            if request.path.startswith("/api/"):
                return jsonify({"error": "请先登录"}), 401
            return redirect(url_for("login", next=request.full_path))
        if request.method == "POST":
            security.check_csrf()
            if g.role != "admin" and request.endpoint not in ("login", "logout"):
                abort(403)
        return None

    def _who(ledger: Ledger) -> tuple[str | None, str | None]:
        if g.open_access:
            return "本机", "admin"
        name = session.get("account")
        started = session.get("login_at", 0)
        if not name or clock.now().timestamp() - float(started) > SESSION_HOURS * 3600:
            return None, None
        account = ledger.account(name)
        return (account.name, account.role) if account else (None, None)

    @app.errorhandler(AutomationError)
    def automation_error(exc: AutomationError) -> Any:
        if request.path.startswith("/api/") or _wants_json():
            return jsonify({"error": str(exc)}), 409 if isinstance(exc, Busy) else 400
        return render_template("error.html", message=str(exc), code=400), 409 if isinstance(exc, Busy) else 400

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(413)
    def http_error(exc: Any) -> Any:
        messages = {400: "请求无效。", 403: "没有权限进行这项操作（只读账号不能修改；或页面已过期，请刷新后重试）。",
                    404: "找不到这个页面或文件。",
                    413: f"上传的内容过大：每个文件不超过 {config.collect.max_file_mb:g} MB、"
                         f"一次不超过 {config.collect.max_files} 个文件（config.toml [collect]）。"}
        code = getattr(exc, "code", 400) or 400
        if getattr(g, "csrf_failed", False):
            messages[403] = "页面已过期或请求不是从本系统的页面发出的（缺少安全令牌），请刷新页面后重试。"
        if request.path.startswith("/api/") or _wants_json():
            return jsonify({"error": messages.get(code, "请求无效。")}), code
        return render_template("error.html", message=messages.get(code, "请求无效。"), code=code), code

    from automation.web import pages

    pages.register(app)
    return app


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.args.get("format") == "json"


def actor() -> Any:
    from automation.actions import Actor

    return Actor(g.account or "?", request.remote_addr or "")


def ctx() -> Console:
    return g.console  # type: ignore[no-any-return]


def send_download(path: Path, name: str) -> Any:
    return send_file(path, as_attachment=True, download_name=name)


def done(message: str, target: str, **values: Any) -> Any:
    flash(message)
    return redirect(url_for(target, **values), code=303)
