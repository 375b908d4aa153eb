"""Console accounts and login throttling (``automation web --add-user``).

Passwords are stored as salted scrypt hashes (the standard library's ``hashlib.scrypt``: a
memory-hard slow hash, no extra dependency); the text ``scrypt$n$r$p$salt$hash`` carries its
parameters so they can be raised later without breaking stored accounts.  Every login attempt
is kept (time, name, client address, success) so a guesser is slowed down by address and by
account name alike.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from automation import clock
from automation.errors import LedgerError
from automation.ledger.connection import Connection
from automation.ledger.records import ROLES, Account

__all__ = ["AccountQueries", "hash_password", "verify_password", "dummy_hash", "MIN_PASSWORD", "THROTTLE_FAILURES",
           "THROTTLE_MINUTES"]

#: Shortest password accepted.
MIN_PASSWORD = 8
#: Failed attempts (per client address or per account name) within the window before logins wait.
THROTTLE_FAILURES = 5
THROTTLE_MINUTES = 15
_N, _R, _P = 2 ** 14, 8, 1   # 16 MiB and ~50 ms per hash on an office PC


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


@functools.cache
def dummy_hash() -> str:
    """A hash to check unknown account names against, so a wrong name takes as long as a wrong password."""
    return hash_password(secrets.token_hex(16))


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match the stored hash?  Constant-time comparison; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


class AccountQueries(Connection):
    def _account(self, r: object) -> Account:
        return Account(r["id"], r["name"], r["role"], r["password_hash"], r["created_at"],  # type: ignore[index]
                       r["last_login_at"])  # type: ignore[index]

    def account_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])

    def accounts(self) -> list[Account]:
        return [self._account(r) for r in self.conn.execute("SELECT * FROM accounts ORDER BY name")]

    def account(self, name: str) -> Account | None:
        r = self.conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return self._account(r) if r else None

    def save_account(self, name: str, role: str, password: str, now: dt.datetime) -> Account:
        """Create the account, or set a new password and role for an existing one."""
        name = name.strip()
        if not name or len(name) > 64 or any(c in name for c in "\r\n\t"):
            raise LedgerError("账号名不能为空，不超过 64 个字符，不含换行或制表符。")
        if role not in ROLES:
            raise LedgerError(f"角色应为 admin（管理员）或 viewer（只读），而不是“{role}”。")
        if len(password) < MIN_PASSWORD:
            raise LedgerError(f"密码至少 {MIN_PASSWORD} 个字符。")
        stamp = clock.iso(now)
        with self.transaction():
            self.conn.execute(
                "INSERT INTO accounts(name, role, password_hash, created_at, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, "
                "updated_at = excluded.updated_at",
                (name, role, hash_password(password), stamp, stamp),
            )
            self.event("account", now, account=name, role=role)
        account = self.account(name)
        assert account is not None
        return account

    def login_failures(self, name: str, address: str, now: dt.datetime) -> int:
        """Failed attempts in the throttle window, for this address or this account name (the larger)."""
        since = clock.iso(now - dt.timedelta(minutes=THROTTLE_MINUTES))
        by_address, by_name = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM login_attempts WHERE address = ? AND at >= ? AND ok = 0), "
            "(SELECT COUNT(*) FROM login_attempts WHERE name = ? AND at >= ? AND ok = 0)",
            (address, since, name, since)).fetchone()
        return max(int(by_address), int(by_name))

    def record_login(self, name: str, address: str, ok: bool, now: dt.datetime) -> None:
        """Keep the attempt (and, on success, the account's last login) and write the audit event."""
        with self.transaction():
            self.conn.execute("INSERT INTO login_attempts(at, name, address, ok) VALUES (?,?,?,?)",
                              (clock.iso(now), name[:64], address, int(ok)))
            if ok:
                self.conn.execute("UPDATE accounts SET last_login_at = ? WHERE name = ?", (clock.iso(now), name))
            self.event("login" if ok else "login-failed", now, account=name[:64], address=address)
