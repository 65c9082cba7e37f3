"""Small URL helpers: hide credentials, find a free port, the MLflow UI's runs page.

Every URL that salsweep prints or logs (Optuna storage, MLflow tracking URI, server
address) goes through :func:`redact_url` first, so a password never reaches a terminal,
a log file or an MLflow tag.
"""

from __future__ import annotations

import re
import socket

__all__ = ["free_port", "port_in_use", "redact_url", "runs_page_url"]

MASK = "***"

# scheme://[user[:password]@]rest. The credentials run to the LAST '@' before any '?' or
# '#': a password may contain '/', ':' and even an unescaped '@'. When a URL is ambiguous
# (an '@' in a path) this masks too much, never too little.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<cred>[^?#]*)@")
# Credentials passed as query parameters (libpq's ?password=, tokens in HTTP URLs).
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|token|access_token|api_key|apikey|secret)=)"
    r"(?P<value>[^&;#]*)",
    re.IGNORECASE,
)
_HTTP = ("http://", "https://")


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``.

    ``postgresql+psycopg2://alice:s3cret@db:5432/optuna`` ->
    ``postgresql+psycopg2://alice:***@db:5432/optuna``. The user name of a database URL
    is kept (it helps to tell which account failed); in an HTTP(S) URL a lone user
    part (``https://TOKEN@host``) is usually a token and is masked as a whole. URLs
    without credentials come back unchanged. Works on unparsable text too.
    """
    match = _USERINFO.match(url)
    if match is not None:
        scheme = match["scheme"]
        user, colon, _password = match["cred"].partition(":")
        if colon:
            userinfo = f"{user}:{MASK}" if user else MASK
        elif scheme.lower() in _HTTP and user:
            userinfo = MASK
        else:
            userinfo = user
        url = f"{scheme}{userinfo}@{url[match.end() :]}"
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{MASK}", url)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because another socket holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option uvicorn sets, so a port in TIME_WAIT after a stop counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def runs_page_url(tracking_uri: str, experiment_id: str) -> str:
    """The MLflow UI's training-runs table of an experiment (credentials hidden).

    MLflow 3 opens an experiment on its GenAI overview; the table of runs, with child
    runs folded under their parent, is ``<server>/#/experiments/<id>/runs``.
    """
    base = redact_url(tracking_uri).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs"
