"""Connection strings: what may be shown of one (never its password)."""

from __future__ import annotations

import re

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_URL_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/?#@]*):[^@/?#]*@")


def redact(dsn: str) -> str:
    """`dsn` with its password replaced by ***, for logs, `doctor` and error messages.

    URLs keep their shape; key=value strings are parsed. Anything unparsable is hidden whole."""
    if _URL_PASSWORD.match(dsn):
        dsn = _URL_PASSWORD.sub(r"\1:***@", dsn)
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable connection string>"
    if "password" in params:
        if dsn.startswith(("postgres://", "postgresql://")):
            return re.sub(r"(?i)(password=)[^&]*", r"\1***", dsn)
        params["password"] = "***"
        return make_conninfo(**params)
    return dsn


def password_of(dsn: str) -> str:
    """The password in `dsn`, if any: added to the log redactor's secrets."""
    try:
        return str(conninfo_to_dict(dsn).get("password") or "")
    except Exception:
        return ""
