"""A throwaway Dovecot IMAP server on 127.0.0.1 for the intake tests.

Debian's ``dovecot-imapd`` (installed by .ci/run) is started in the foreground with a config
written to a temporary directory: maildir storage there, any user name accepted with one
password (static passdb), plain-text login without TLS, logs to a file.  It is stopped by its
PID.  Dovecot refuses mail access as UID 0, so when the tests run as root the mailboxes belong
to ``nobody`` (the directory is made traversable for it); otherwise they belong to the caller
and Dovecot runs unprivileged.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
OPENSSL = shutil.which("openssl")
PASSWORD = "secret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dovecot:
    root: Path
    port: int
    process: subprocess.Popen
    password: str = PASSWORD
    tls_port: int | None = None  # implicit TLS (imaps); STARTTLS is offered on ``port`` too
    cert: Path | None = None     # the self-signed certificate (a CA file for clients)

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def start_dovecot(tls: bool = True) -> Dovecot:
    """Start Dovecot on a free port (and a TLS port when openssl is there); RuntimeError when it fails."""
    if DOVECOT is None:
        raise FileNotFoundError("dovecot")
    root = Path(tempfile.mkdtemp(prefix="duban-dovecot-"))
    os.chmod(root, 0o755)  # the mail user (nobody) must reach its maildir
    cert = key = None
    if tls and OPENSSL:
        cert, key = _self_signed(root)
    tls_port = free_port() if cert else None
    ssl_conf = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n" if cert else "ssl = no\n"
    mail = root / "mail"
    mail.mkdir()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("nobody")
        uid, gid = owner.pw_uid, owner.pw_gid
        os.chown(mail, uid, gid)
        run_as = ""
    else:
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid).gr_name
        run_as = (f"default_login_user = {me}\ndefault_internal_user = {me}\ndefault_internal_group = {group}\n"
                  "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(
        f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = duban-test-{port}
log_path = {root}/dovecot.log
{ssl_conf}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
imap_id_log = *
first_valid_uid = {min(uid, 100)}
first_valid_gid = {min(gid, 100)}
mail_location = maildir:{mail}/%u
mail_uid = {uid}
mail_gid = {gid}
{run_as}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port or 0}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
""",
        encoding="utf-8",
    )
    with open(root / "stderr.log", "wb") as err_fh:
        proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err_fh)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(100).startswith(b"* OK"):
                    return Dovecot(root, port, proc, tls_port=tls_port, cert=cert)
        except OSError:
            time.sleep(0.05)
    err = (root / "stderr.log").read_text(errors="replace")
    server = Dovecot(root, port, proc)
    log = server.log
    server.stop()
    raise RuntimeError(f"dovecot did not start: {err}\n{log}")
