"""The console's pages and actions (routes).  Each: parse, call one library function, render."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, g, jsonify, redirect, render_template, request, session, url_for

from automation import actions, agenda, clock
from automation.mail.preview import distribution_preview
from automation.progress import views
from automation.progress.status import status_summary
from automation.web.app import actor, ctx, done, send_download


def register(app: Flask) -> None:  # noqa: C901 - one route each, nothing shared to factor out
    # ------------------------------------------------------------------ reading

    @app.get("/")
    def overview() -> Any:
        c = ctx()
        return render_template("overview.html", view=views.overview(c.config, c.ledger(), g.now),
                               job=c.jobs.get("collect"), page="overview")

    @app.get("/api/status")
    def api_status() -> Any:
        c = ctx()
        return jsonify(status_summary(c.config, c.ledger(), g.now))

    @app.get("/api/jobs")
    def api_jobs() -> Any:
        return jsonify(ctx().jobs.to_json())

    @app.get("/api/session")
    def api_session() -> Any:
        from automation.web.security import csrf_token

        return jsonify({"account": g.account, "role": g.role, "csrf_token": csrf_token()})

    @app.get("/tasks")
    def tasks() -> Any:
        c = ctx()
        return render_template("tasks.html", view=views.task_table(c.config, c.ledger(), g.now), page="tasks")

    @app.get("/tasks/<int:number>")
    def task(number: int) -> Any:
        c = ctx()
        view = views.task_view(c.config, c.ledger(), g.now, number)
        if view is None:
            abort(404)
        return render_template("task.html", view=view, page="tasks")

    @app.get("/units")
    def units() -> Any:
        c = ctx()
        return render_template("units.html", view=views.registry_view(c.config, c.ledger(), g.now), page="units")

    @app.get("/units/<int:unit_id>")
    def unit(unit_id: int) -> Any:
        c = ctx()
        view = agenda.unit_page(c.config, c.ledger(), g.now, unit_id)
        if view is None:
            abort(404)
        return render_template("unit.html", view=view, page="units")

    @app.get("/files/<int:submission_id>")
    def original(submission_id: int) -> Any:
        c = ctx()
        found = actions.original_file(c.config, c.ledger(), submission_id)
        if found is None:
            abort(404)
        return send_download(*found)

    @app.get("/send")
    def send_page() -> Any:
        c = ctx()
        return render_template("send.html", view=distribution_preview(c.config, c.ledger()),
                               job=c.jobs.get("send"), build_job=c.jobs.get("build"), page="send")

    @app.get("/collect")
    def collect_page() -> Any:
        c = ctx()
        return render_template("collect.html", view=views.intake_view(c.config, c.ledger()),
                               job=c.jobs.get("collect"), page="collect")

    @app.get("/remind")
    def remind_page() -> Any:
        c = ctx()
        return render_template("remind.html", view=agenda.reminder_agenda(c.config, c.ledger(), g.now),
                               job=c.jobs.get("remind"), page="remind")

    @app.get("/report")
    def report_page() -> Any:
        c = ctx()
        return render_template("report.html", files=actions.report_files(c.config), documents=actions.DOCUMENTS,
                               job=c.jobs.get("report"), page="report")

    @app.get("/reports/<path:name>")
    def report_download(name: str) -> Any:
        path = actions.report_file(ctx().config, name)
        if path is None:
            abort(404)
        return send_download(path, path.name)

    # ------------------------------------------------------------------ acting

    @app.post("/tasks/preview")
    def tasks_preview() -> Any:
        c = ctx()
        upload = request.files.get("table")
        if upload is None or not upload.filename:
            return done("请选择任务表文件。", "tasks")
        saved = actions.save_table_upload(c.config, upload.filename, upload.stream, g.now)
        view = _preview(saved.path, saved.name)
        return render_template("tasks_preview.html", view=view, token=saved.path.name, page="tasks")

    def _preview(path: Any, name: str) -> Any:
        from automation.tasks.preview import preview_table

        c = ctx()
        return preview_table(c.config, path, c.ledger(), source_name=name)

    @app.post("/tasks/import")
    def tasks_import() -> Any:
        c = ctx()
        path = actions.table_upload(c.config, request.form.get("token", ""))
        if path is None:
            return done("预览已过期，请重新上传任务表。", "tasks")
        name = request.form.get("source_name", "")[:200] or path.name
        replace = request.form.get("replace") == "1" and request.form.get("confirm_replace") == "1"
        result = actions.import_table(c.config, c.ledger(), g.now, path, actor=actor(), source_name=name,
                                      replace=replace)
        return done(f"{result.batch.title}：{result.message}。", "tasks")

    @app.post("/build")
    def build() -> Any:
        c, who = ctx(), actor()
        c.jobs.start("build", "全部单位", who.account,
                     lambda led, job: actions.build(c.config, led, g_now(c), actor=who, progress=job.progress))
        return done("已开始生成工作簿。", "send_page")

    @app.post("/send")
    def send() -> Any:
        c, who = ctx(), actor()
        what = request.form.get("what", "distribute")
        if what == "receipts":
            def work(led: Any, job: Any) -> Any:
                return actions.send_receipts_now(c.config, led, g_now(c), actor=who, progress=job.progress)
            label = "补发回执"
        else:
            resend = what == "resend"

            def work(led: Any, job: Any) -> Any:
                return actions.send_distribution(c.config, led, g_now(c), actor=who, resend_uncertain=resend,
                                                 progress=job.progress)
            label = "重发不确定的" if resend else "分发工作簿"
        c.jobs.start("send", label, who.account, work)
        return done(f"已开始：{label}。", "send_page")

    @app.post("/collect")
    def collect() -> Any:
        c, who = ctx(), actor()
        files = [(f.filename or "", f.stream) for f in request.files.getlist("files") if f.filename]
        if not files:
            if _json():
                return jsonify({"error": "没有收到文件（字段 files）。"}), 400
            return done("请选择或拖入要回收的文件。", "collect_page")
        current = c.jobs.get("collect")
        if current is not None and current.running:
            raise actions.AutomationError(f"正在回收（{current.label}），请等它完成后再上传。")
        batch = actions.save_uploads(c.config, files, g.now)
        job = c.jobs.start("collect", f"上传 {len(files)} 个文件", who.account,
                           lambda led, job: actions.collect_uploads(c.config, led, g_now(c), batch, actor=who,
                                                                    progress=job.progress))
        if _json():
            job.thread.join()  # type: ignore[union-attr]
            if job.state == "failed":
                return jsonify({"error": job.error}), 500
            return jsonify(job.result.to_json())
        return redirect(url_for("collect_page"), code=303)

    @app.post("/collect/imap")
    def collect_imap() -> Any:
        c, who = ctx(), actor()
        c.jobs.start("collect", "收取邮件", who.account,
                     lambda led, job: actions.collect_mailbox(c.config, led, g_now(c), actor=who))
        return redirect(url_for("collect_page"), code=303)

    @app.post("/collect/recheck/<int:submission_id>")
    def recheck(submission_id: int) -> Any:
        c, who = ctx(), actor()
        job = c.jobs.start("collect", f"重新检查 #{submission_id}", who.account,
                           lambda led, job: actions.CollectOutcome(
                               [actions.recheck(c.config, led, g_now(c), submission_id, actor=who)]))
        job.thread.join()  # type: ignore[union-attr]
        return redirect(url_for("collect_page"), code=303)

    @app.post("/remind")
    def remind() -> Any:
        c, who = ctx(), actor()
        c.jobs.start("remind", "立即发送到期提醒", who.account,
                     lambda led, job: actions.remind_now(c.config, led, g_now(c), actor=who, progress=job.progress))
        return done("已开始发送到期的催办提醒。", "remind_page")

    @app.post("/report")
    def report() -> Any:
        c, who = ctx(), actor()
        kind = request.form.get("kind", "report")
        name = actions.document_name(kind)
        c.jobs.start("report", f"生成{name}", who.account,
                     lambda led, job: actions.make_report(c.config, led, g_now(c), actor=who, kind=kind,
                                                          progress=job.progress))
        return done(f"已开始生成{name}。", "report_page")

    # ------------------------------------------------------------------ login

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        from automation.ledger.accounts import (
            THROTTLE_FAILURES,
            THROTTLE_MINUTES,
            dummy_hash,
            verify_password,
        )

        if g.open_access:
            return redirect(url_for("overview"))
        error = ""
        if request.method == "POST":
            c = ctx()
            led = c.ledger()
            name = request.form.get("name", "").strip()[:64]
            address = request.remote_addr or ""
            now = clock.now()
            if led.login_failures(name, address, now) >= THROTTLE_FAILURES:
                error = f"登录失败次数过多，请 {THROTTLE_MINUTES} 分钟后再试。"
                led.event("login-throttled", now, account=name, address=address)
            else:
                account = led.account(name)
                ok = verify_password(request.form.get("password", ""), account.password_hash if account else dummy_hash())
                led.record_login(name, address, ok, now)
                if ok and account is not None:
                    session.clear()
                    session.update(account=account.name, login_at=now.timestamp())
                    target = request.args.get("next", "")
                    return redirect(target if target.startswith("/") and not target.startswith("//")
                                    else url_for("overview"), code=303)
                error = "账号或密码不正确。"
        return render_template("login.html", error=error, page="login"), (401 if error else 200)

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return redirect(url_for("login"), code=303)


def g_now(c: Any) -> Any:
    """The time for a background job (the console's clock, fixed with ``--now`` for a simulated batch)."""
    return c.clock()


def _json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.args.get("format") == "json"
