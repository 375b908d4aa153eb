"""Real SMTP servers for the mail tests: aiosmtpd on 127.0.0.1 in a background thread.

Variants: plain, implicit TLS (SMTPS, port 465 style), STARTTLS, STARTTLS + AUTH required, one
that answers 451 (or 421 and hangs up) to the first DATA and then accepts, one that refuses
some recipients with 550, and one that greylists some recipients (451 at RCPT) a few times.  The TLS certificate is self-signed, generated here with
``cryptography`` for ``localhost`` / ``127.0.0.1``; clients trust it through an explicit
``SSLContext`` (never by turning verification off).
"""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "gwgk@np.example.com"
PASSWORD = "abcd1234efgh"        # QQ / 163 style 授权码
UTF8_USER = "zhang@np.example.com"
UTF8_PASSWORD = "南平2026密码"    # some 政务邮箱 allow Chinese passwords; smtplib.login cannot send them
ACCOUNTS = {USER: PASSWORD, UTF8_USER: UTF8_PASSWORD}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for localhost / 127.0.0.1 (PEM files in ``folder``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """Records every accepted message; can refuse recipients or fail the first DATA commands."""

    reject: set[str] = field(default_factory=set)
    fail_data: list[str] = field(default_factory=list)   # replies for the first DATA commands, in order
    defer: dict[str, int] = field(default_factory=dict)  # address -> how many RCPTs to answer 451 first
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.defer.get(address, 0) > 0:
            self.defer[address] -= 1
            return f"451 4.7.1 <{address}>: Recipient address rejected: greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.data_commands += 1
        if self.fail_data:
            return self.fail_data.pop(0)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content))
        return "250 2.0.0 Ok: queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and \
        ACCOUNTS.get(auth_data.login.decode("utf-8")) == auth_data.password.decode("utf-8")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@dataclass
class Server:
    host: str
    port: int
    handler: Handler
    client_context: ssl.SSLContext | None


@contextmanager
def smtp_server(kind: str = "plain", cert: tuple[Path, Path] | None = None, handler: Handler | None = None,
                ) -> Iterator[Server]:
    """Run one server variant: ``plain``, ``ssl``, ``starttls`` or ``auth`` (STARTTLS + AUTH required)."""
    handler = handler or Handler()
    port = _free_port()
    kwargs: dict = {}
    client_ctx = None
    if kind != "plain":
        assert cert is not None
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        client_ctx = ssl.create_default_context(cafile=str(cert[0]))
        if kind == "ssl":
            kwargs["ssl_context"] = server_ctx
        else:
            kwargs["tls_context"] = server_ctx
            kwargs["require_starttls"] = True
        if kind == "auth":
            kwargs.update(authenticator=_authenticator, auth_required=True, auth_require_tls=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5,
                            server_hostname="localhost", **kwargs)
    controller.start()
    try:
        yield Server("127.0.0.1", port, handler, client_ctx)
    finally:
        controller.stop()
