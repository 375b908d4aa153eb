"""config.toml: the office, the unit registry, the batch, mail, intake, reminder and reporting-round settings.

Parsed once into frozen dataclasses.  Every key has a default so a minimal file works; every
wrong value is a :class:`~automation.errors.ConfigError` naming the key and what to write.
Relative paths are relative to the directory of config.toml, not the working directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation.errors import ConfigError

__all__ = [
    "Config",
    "Office",
    "UnitSpec",
    "BatchSpec",
    "MailConfig",
    "ImapConfig",
    "CollectConfig",
    "RemindConfig",
    "RoundsConfig",
    "ServiceConfig",
    "load_config",
    "default_config_path",
    "CONFIG_ENV",
]

CONFIG_ENV = "AUTOMATION_CONFIG"


@dataclass(frozen=True)
class Office:
    name: str = "督办办公室"
    short_name: str = ""
    city: str = ""
    contact: str = ""
    phone: str = ""
    email: str = ""
    supervisor_email: str = ""


@dataclass(frozen=True)
class UnitSpec:
    name: str
    aliases: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    contact: str = ""
    phone: str = ""
    kind: str = ""


@dataclass(frozen=True)
class BatchSpec:
    title: str
    year: int
    deadline: dt.date
    tasks: Path | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class ServerAccount:
    """A mail server login: the password never sits in config.toml, only the name of the
    environment variable that holds it."""

    host: str = ""
    port: int = 0
    security: str = "ssl"
    user: str = ""
    password_env: str = ""
    timeout: float = 30.0
    ca_file: str = ""

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


@dataclass(frozen=True)
class MailConfig(ServerAccount):
    port: int = 465
    password_env: str = "DUBAN_SMTP_PASSWORD"
    mode: str = "outbox"
    sender: str = ""
    sender_name: str = ""
    reply_to: str = ""
    per_minute: float = 20.0
    retries: int = 3
    backoff_seconds: float = 5.0


@dataclass(frozen=True)
class ImapConfig(ServerAccount):
    port: int = 993
    password_env: str = "DUBAN_IMAP_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = "督办已处理"


@dataclass(frozen=True)
class CollectConfig:
    max_file_mb: float = 20.0
    max_files: int = 500            # files one console upload may carry
    max_uncompressed_mb: float = 200.0
    max_ratio: float = 200.0
    max_rows: int = 20000
    max_cols: int = 200
    accept_unsigned: bool = True
    require_progress_when_done: bool = True
    no_future_completion: bool = True
    receipts: bool = True
    parse_timeout: float = 60.0
    parse_memory_mb: int = 1024


@dataclass(frozen=True)
class RemindConfig:
    time: str = "09:00"
    weekly_weekday: int = 1
    before_deadline_days: tuple[int, ...] = (5, 1)
    #: Working days before a task's own 完成时限 (by default the same as ``before_deadline_days``).
    task_before_days: tuple[int, ...] = (5, 1)
    overdue_daily: bool = True
    escalate_after_days: int = 3
    escalate_cc: tuple[str, ...] = ()
    extra_holidays: tuple[dt.date, ...] = ()
    extra_workdays: tuple[dt.date, ...] = ()
    attach_workbook: bool = True


@dataclass(frozen=True)
class RoundsConfig:
    """定期报送: units report progress on a cadence until the batch deadline (``[rounds]``).

    ``cadence``: ``none`` (one round: the batch), ``monthly`` (every month on ``day``),
    ``quarterly`` (March, June, September, December on ``day``) or ``dates`` (the list ``dates``).
    The batch deadline always closes the last round.
    """

    cadence: str = "none"
    day: int = 25
    dates: tuple[dt.date, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.cadence != "none"


@dataclass(frozen=True)
class ServiceConfig:
    poll_minutes: int = 10
    report_after_collect: bool = True
    log_file: str = "logs/automation.log"
    log_max_kb: int = 1024
    log_backups: int = 5


@dataclass(frozen=True)
class Config:
    path: Path
    base_dir: Path
    workspace: Path
    template: Path
    office: Office
    batch: BatchSpec
    units: tuple[UnitSpec, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mail: MailConfig = field(default_factory=MailConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    remind: RemindConfig = field(default_factory=RemindConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    rounds: RoundsConfig = field(default_factory=RoundsConfig)

    def with_workspace(self, workspace: Path) -> Config:
        from dataclasses import replace

        return replace(self, workspace=Path(workspace).resolve())


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "config.toml")


# --------------------------------------------------------------------------- parsing helpers


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config.toml：[{name}] 应为一个配置节（[{name}]），请检查写法。")
    return value


def _typed(sec: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    if key not in sec:
        return default
    value = sec[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "文本（加引号）", int: "整数", float: "数字", bool: "true 或 false", list: "列表 [..]"}
        want = names.get(kind if isinstance(kind, type) else kind[0], str(kind))
        raise ConfigError(f"config.toml：[{where}] {key} = {value!r} 应为{want}。")
    return value


def _strs(sec: dict[str, Any], where: str, key: str) -> tuple[str, ...]:
    value = sec.get(key, [])
    if isinstance(value, str):
        value = [value] if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config.toml：[{where}] {key} 应为文本列表，例如 [\"a@example.com\"]。")
    return tuple(v.strip() for v in value if v.strip())


def _dates(sec: dict[str, Any], where: str, key: str) -> tuple[dt.date, ...]:
    value = sec.get(key, [])
    out = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            out.append(v)
        elif isinstance(v, str):
            try:
                out.append(dt.date.fromisoformat(v))
            except ValueError as exc:
                raise ConfigError(f"config.toml：[{where}] {key} 中的 {v!r} 不是日期，请写成 2026-10-01。") from exc
        else:
            raise ConfigError(f"config.toml：[{where}] {key} 应为日期列表，例如 [2026-10-01]。")
    return tuple(out)


def _choice(value: str, where: str, key: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ConfigError(f"config.toml：[{where}] {key} = {value!r} 无效，可选：{' / '.join(options)}。")
    return value


def _hhmm(value: str, where: str, key: str) -> str:
    try:
        t = dt.time.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"config.toml：[{where}] {key} = {value!r} 应为时间，例如 \"09:00\"。") from exc
    return t.strftime("%H:%M")


#: Each ``[section]`` of config.toml and the dataclass that holds it (``[[units]]``: UnitSpec).
SECTIONS: dict[str, type] = {"office": Office, "batch": BatchSpec, "mail": MailConfig, "imap": ImapConfig,
                             "collect": CollectConfig, "remind": RemindConfig, "service": ServiceConfig,
                             "rounds": RoundsConfig}

_TOP_KEYS = ("workspace", "template", "office", "batch", "units", "groups", "mail", "imap", "collect", "remind",
             "service", "rounds")
_UNIT_KEYS = ("name", "aliases", "email", "emails", "cc", "contact", "phone", "kind")


def _check_keys(data: dict[str, Any]) -> None:
    """A misspelt key would silently fall back to its default: refuse it, naming the key."""
    import difflib

    def check(where: str, keys: Any, known: tuple[str, ...]) -> None:
        for key in keys:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"是不是“{close[0]}”？" if close else f"可用的有：{'、'.join(known)}。"
                raise ConfigError(f"config.toml：{where} 中有未知的配置项“{key}”。{hint}")

    check("顶层", data, _TOP_KEYS)
    for name, klass in SECTIONS.items():
        if isinstance(data.get(name), dict):
            check(f"[{name}]", data[name], tuple(klass.__dataclass_fields__))
    for i, unit in enumerate(data.get("units", []) if isinstance(data.get("units"), list) else [], start=1):
        if isinstance(unit, dict):
            check(f"[[units]] 第 {i} 个（{unit.get('name', '')}）", unit, _UNIT_KEYS)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Build a :class:`Config` from parsed TOML (exposed for tests)."""
    base = path.resolve().parent
    _check_keys(data)
    office = _office(_section(data, "office"))
    ws = _typed(data, "(顶层)", "workspace", str, "var")
    template = _typed(data, "(顶层)", "template", str, "templates/report_template.xlsx")
    return Config(
        path=path.resolve(),
        base_dir=base,
        workspace=(base / ws).resolve(),
        template=(base / template).resolve(),
        office=office,
        batch=_batch(_section(data, "batch"), base),
        units=_units(data.get("units", [])),
        groups=_groups(_section(data, "groups")),
        mail=_mail(_section(data, "mail"), office, base),
        imap=_imap(_section(data, "imap"), base),
        collect=_collect(_section(data, "collect")),
        remind=_remind(_section(data, "remind")),
        service=_plain(_section(data, "service"), "service", ServiceConfig),
        rounds=_rounds(_section(data, "rounds")),
    )


def _plain(sec: dict[str, Any], where: str, klass: Any) -> Any:
    """A section whose keys are all plain typed values with the dataclass's defaults."""
    defaults = klass()
    return klass(**{k: _typed(sec, where, k, type(getattr(defaults, k)), getattr(defaults, k))
                    for k in klass.__dataclass_fields__})


def _office(sec: dict[str, Any]) -> Office:
    office = _plain(sec, "office", Office)
    for key in ("email", "supervisor_email"):
        _check_address(getattr(office, key), f"[office] {key}")
    return office


def _batch(sec: dict[str, Any], base: Path) -> BatchSpec:
    title = _typed(sec, "batch", "title", str, "")
    if not title.strip():
        raise ConfigError("config.toml：[batch] 缺少 title（本批督办任务的名称），例如 title = \"2021年政务公开重点工作\"。")
    deadline = sec.get("deadline")
    if isinstance(deadline, str):
        try:
            deadline = dt.date.fromisoformat(deadline)
        except ValueError as exc:
            raise ConfigError(f"config.toml：[batch] deadline = {deadline!r} 不是日期，请写成 2021-12-15。") from exc
    if isinstance(deadline, dt.datetime):
        deadline = deadline.date()
    if not isinstance(deadline, dt.date):
        raise ConfigError("config.toml：[batch] 缺少 deadline（报送截止日期），例如 deadline = 2021-12-15。")
    tasks_value = _typed(sec, "batch", "tasks", str, "")
    return BatchSpec(
        title=title.strip(),
        year=_typed(sec, "batch", "year", int, deadline.year),
        deadline=deadline,
        tasks=(base / tasks_value) if tasks_value else None,
        sheet=_typed(sec, "batch", "sheet", str, None),
    )


def _units(raw_units: Any) -> tuple[UnitSpec, ...]:
    if not isinstance(raw_units, list):
        raise ConfigError("config.toml：units 应写成多个 [[units]] 块。")
    units: list[UnitSpec] = []
    seen: set[str] = set()
    for i, u in enumerate(raw_units, start=1):
        where = f"units 第 {i} 个"
        if not isinstance(u, dict) or not str(u.get("name", "")).strip():
            raise ConfigError(f"config.toml：[[units]] 第 {i} 个缺少 name（单位名称）。")
        name = str(u["name"]).strip()
        if name in seen:
            raise ConfigError(f"config.toml：单位“{name}”登记了两次，请合并为一个 [[units]] 块。")
        seen.add(name)
        emails = _strs(u, where, "email") or _strs(u, where, "emails")
        cc = _strs(u, where, "cc")
        for address in (*emails, *cc):
            _check_address(address, f"[[units]] “{name}” 的邮箱")
        units.append(UnitSpec(
            name=name,
            aliases=_strs(u, where, "aliases"),
            emails=emails,
            cc=cc,
            contact=_typed(u, where, "contact", str, ""),
            phone=_typed(u, where, "phone", str, ""),
            kind=_typed(u, where, "kind", str, ""),
        ))
    return tuple(units)


def _groups(sec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {str(k).strip(): _strs(sec, "groups", k) for k in sec}


def _mail(m: dict[str, Any], office: Office, base: Path) -> MailConfig:
    defaults = MailConfig()
    mail = MailConfig(
        mode=_choice(_typed(m, "mail", "mode", str, defaults.mode), "mail", "mode", ("outbox", "smtp")),
        host=_typed(m, "mail", "host", str, ""),
        port=_typed(m, "mail", "port", int, defaults.port),
        security=_choice(_typed(m, "mail", "security", str, defaults.security), "mail", "security",
                         ("ssl", "starttls", "none")),
        user=_typed(m, "mail", "user", str, ""),
        password_env=_typed(m, "mail", "password_env", str, defaults.password_env),
        sender=_typed(m, "mail", "sender", str, "") or _typed(m, "mail", "user", str, "") or office.email,
        sender_name=_typed(m, "mail", "sender_name", str, "") or office.name,
        reply_to=_typed(m, "mail", "reply_to", str, ""),
        per_minute=_typed(m, "mail", "per_minute", float, defaults.per_minute),
        retries=_typed(m, "mail", "retries", int, defaults.retries),
        backoff_seconds=_typed(m, "mail", "backoff_seconds", float, defaults.backoff_seconds),
        timeout=_typed(m, "mail", "timeout", float, defaults.timeout),
        ca_file=_path_text(m, "mail", base),
    )
    _positive(mail, "mail", ("timeout",))
    _positive(mail, "mail", ("per_minute", "retries", "backoff_seconds"), allow_zero=True)  # 0: no throttle
    _check_address(mail.reply_to, "[mail] reply_to")
    return mail


def _imap(im: dict[str, Any], base: Path) -> ImapConfig:
    defaults = ImapConfig()
    imap = ImapConfig(
        host=_typed(im, "imap", "host", str, ""),
        port=_typed(im, "imap", "port", int, defaults.port),
        security=_choice(_typed(im, "imap", "security", str, defaults.security), "imap", "security",
                         ("ssl", "starttls", "none")),
        user=_typed(im, "imap", "user", str, ""),
        password_env=_typed(im, "imap", "password_env", str, defaults.password_env),
        folder=_typed(im, "imap", "folder", str, defaults.folder),
        processed_folder=_typed(im, "imap", "processed_folder", str, defaults.processed_folder),
        timeout=_typed(im, "imap", "timeout", float, defaults.timeout),
        ca_file=_path_text(im, "imap", base),
    )
    _positive(imap, "imap", ("timeout",))
    return imap


def _collect(c: dict[str, Any]) -> CollectConfig:
    collect = _plain(c, "collect", CollectConfig)
    _positive(collect, "collect", ("max_file_mb", "max_uncompressed_mb", "max_ratio", "max_rows", "max_cols",
                                   "parse_timeout", "parse_memory_mb"))
    return collect


def _remind(r: dict[str, Any]) -> RemindConfig:
    defaults = RemindConfig()
    days = _day_list(r, "before_deadline_days", list(defaults.before_deadline_days))
    task_days = _day_list(r, "task_before_days", days)
    weekday = _typed(r, "remind", "weekly_weekday", int, defaults.weekly_weekday)
    if not 0 <= weekday <= 7:
        raise ConfigError("config.toml：[remind] weekly_weekday 应为 1（周一）到 7（周日），0 表示不做每周提醒。")
    remind = RemindConfig(
        time=_hhmm(_typed(r, "remind", "time", str, defaults.time), "remind", "time"),
        weekly_weekday=weekday,
        before_deadline_days=tuple(sorted(set(days), reverse=True)),
        task_before_days=tuple(sorted(set(task_days), reverse=True)),
        overdue_daily=_typed(r, "remind", "overdue_daily", bool, defaults.overdue_daily),
        escalate_after_days=_typed(r, "remind", "escalate_after_days", int, defaults.escalate_after_days),
        escalate_cc=_strs(r, "remind", "escalate_cc"),
        extra_holidays=_dates(r, "remind", "extra_holidays"),
        extra_workdays=_dates(r, "remind", "extra_workdays"),
        attach_workbook=_typed(r, "remind", "attach_workbook", bool, defaults.attach_workbook),
    )
    _positive(remind, "remind", ("escalate_after_days",), allow_zero=True)
    for address in remind.escalate_cc:
        _check_address(address, "[remind] escalate_cc")
    return remind


def _day_list(r: dict[str, Any], key: str, default: list[int]) -> list[int]:
    days = r.get(key, default)
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in days):
        raise ConfigError(f"config.toml：[remind] {key} 应为非负整数列表，例如 [5, 1]。")
    return days


def _rounds(r: dict[str, Any]) -> RoundsConfig:
    defaults = RoundsConfig()
    cadence = _choice(_typed(r, "rounds", "cadence", str, defaults.cadence), "rounds", "cadence",
                      ("none", "monthly", "quarterly", "dates"))
    day = _typed(r, "rounds", "day", int, defaults.day)
    if not 1 <= day <= 31:
        raise ConfigError(f"config.toml：[rounds] day = {day!r} 应为 1 到 31 之间的整数（每月的第几天，大于当月天数时取月末）。")
    dates = tuple(sorted(set(_dates(r, "rounds", "dates"))))
    if cadence == "dates" and not dates:
        raise ConfigError("config.toml：[rounds] cadence = \"dates\" 时请在 dates 中列出各期的报送截止日期，"
                          "例如 dates = [2027-03-25, 2027-06-25]。")
    return RoundsConfig(cadence=cadence, day=day, dates=dates)


def _path_text(sec: dict[str, Any], where: str, base: Path) -> str:
    value = _typed(sec, where, "ca_file", str, "").strip()
    return str(base / value) if value else ""


def _positive(obj: Any, where: str, keys: tuple[str, ...], allow_zero: bool = False) -> None:
    """Sizes, limits and times must be positive: a negative limit would refuse (or allow) everything."""
    for key in keys:
        value = getattr(obj, key)
        if value < 0 or (value == 0 and not allow_zero):
            want = "不小于 0 的数" if allow_zero else "大于 0 的数"
            raise ConfigError(f"config.toml：[{where}] {key} = {value!r} 无效，应为{want}。")


_ADDRESS_RE = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+")


def _check_address(address: str, where: str) -> None:
    """One plain e-mail address (a@b.cn); 「a@b@c」 or a name with spaces would be silently mangled later."""
    if address and not _ADDRESS_RE.fullmatch(address.strip()):
        raise ConfigError(f"config.toml：{where} “{address}” 不是有效的邮箱地址，请写成 name@example.gov.cn 的形式"
                          "（多个地址请写成列表，每项一个）。")


def load_config(path: str | Path | None = None, workspace: str | Path | None = None) -> Config:
    """Read config.toml (``path``, else $AUTOMATION_CONFIG, else ./config.toml)."""
    p = Path(path) if path else default_config_path()
    if not p.exists():
        raise ConfigError(
            f"{p}：找不到配置文件。请在当前目录放置 config.toml，或用 --config 指定，或设置环境变量 {CONFIG_ENV}。"
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}：配置文件须为 UTF-8 编码（用记事本“另存为”选择 UTF-8）。") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}：配置文件格式错误（{exc}）。请检查引号、括号和等号。") from exc
    cfg = parse_config(data, p)
    if workspace:
        cfg = cfg.with_workspace(Path(workspace))
    return cfg
