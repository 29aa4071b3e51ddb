"""Secrets out of text: credentials in URLs, headers and messages, in exceptions and log records.

FRED only takes its key in the query (`api_key=`), and a `requests` error repeats the whole URL
("… Max retries exceeded with url: /fred/series?…&api_key=<key> (Caused by …)"); such a message
reaches log lines, `/healthz` reasons and tracebacks. Two nets catch it: the query parameters
and headers that carry credentials are masked wherever they appear, and every secret value the
process was configured with (registered when a client is built) is masked literally.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# Query parameters that carry credentials (FRED api_key, finnhub-python's token, Yahoo's crumb).
SECRET_PARAMS = (
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "token",
    "crumb",
    "password",
    "secret",
)
# `name=value` in a query (also percent-quoted `name%3Dvalue` inside another URL).
_NAMES = "|".join(map(re.escape, SECRET_PARAMS))
# Preceded by a non-name character, or by a quoted ? or & (%3F, %26).
_QUERY = re.compile(
    rf"(?i)(?:(?<![A-Za-z0-9_-])|(?<=%3F)|(?<=%26))({_NAMES})(=|%3D)[^&\s'\"()<>,;]+"
)
# `X-Finnhub-Token: value` (a header line) or `'X-Finnhub-Token': 'value'` (a headers dict).
_HEADER = re.compile(r"(?i)(x-finnhub-token|authorization)(['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+")
# A registered secret shorter than this is not masked literally (it would mask ordinary words).
MIN_SECRET_LENGTH = 6

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` wherever it appears from now on (API keys, passwords)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every credential masked."""
    text = _QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def describe_error(exc: BaseException) -> str:
    """`Type: message` of an exception, fit for a log line or a health reason."""
    return redact(f"{type(exc).__name__}: {exc}")


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message, its traceback and its stack (a handler filter:
    it sees every record the handler writes, whichever logger made it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatter.format uses exc_text when it is set: the traceback is formatted once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a RedactingFilter to every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
