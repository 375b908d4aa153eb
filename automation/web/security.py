"""Who may do what: accounts, sessions, CSRF tokens, login throttling and security headers.

- On a loopback address with no account in the ledger the console is a local single-user tool:
  every request acts as 本机 with admin rights (the pages say so).  As soon as one account exists
  — and always on any other address (the server refuses to start without one) — every page asks
  for a login.
- Sessions are Flask's signed cookie (HttpOnly, SameSite=Strict) with a key made at start-up, so
  a restart logs everyone out; the account is looked up again on every request, so a changed role
  applies at once.
- Every POST carries the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``) or gets 403.  Flask-WTF would bring WTForms for a check this short.
- A viewer sees every page and changes nothing (every POST but logout is 403).
- Headers: no framing, a content-security policy without inline script or style, no sniffing,
  no referrer, no caching of pages that carry data.  Set by hand: Talisman's HTTPS redirects do
  not fit a console served over plain HTTP on a PC or an intranet.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import abort, g, request, session

__all__ = ["LOOPBACK_NAMES", "is_loopback", "csrf_token", "check_csrf", "CSP", "security_headers"]

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    """Is ``host`` (an address or name to listen on) this machine only?"""
    host = host.strip().strip("[]")
    return host in LOOPBACK_NAMES or host.startswith("127.")


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """403 unless the request carries the session's token."""
    expected = session.get("csrf")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        g.csrf_failed = True
        abort(403)


def security_headers(response: Any) -> Any:
    h = response.headers
    h["X-Frame-Options"] = "DENY"
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        h["Cache-Control"] = "no-store"
    return response
