"""Secrets by reference: a setting names where a secret lives (``env:NAME``, ``file:/path``), never holds it.

A secret (a password, a token, an ``Authorization`` header, an API key, credentials in a URL) given inline
is refused by :func:`refuse_inline` with one line naming the field, so no secret reaches the database,
its backups or the audit log. :func:`resolve` reads a reference when the secret is used (at delivery),
so rotating it means changing the environment or the file, not the CRM.

Keys that must live *with* the data (the campaigns' link-signing keys) are wrapped with the CRM secret
key (:func:`wrap`), which lives outside the database: ``CRMKIT_SECRET_KEY`` (the key, or an ``env:`` /
``file:`` reference to it), else ``~/.config/crmkit/secret.key``, created (mode 0600) on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crmkit.core.redact import is_reference, is_secret_name
from crmkit.errors import CRMError, ValidationError

#: Where the CRM secret key is read from, in this order.
KEY_ENV = "CRMKIT_SECRET_KEY"
KEY_FILE = Path("~/.config/crmkit/secret.key")
HOW = "give it by reference instead: env:NAME (an environment variable) or file:/path (see docs/security.md)"


class SecretUnavailable(CRMError):
    """A referenced secret cannot be read now (variable unset, file missing); the message names the reference."""


def resolve_secret(value: str, field: str) -> str:
    """The secret a reference points at (a plain value is returned as is); ``SecretUnavailable`` names the
    reference and ``field``, never a value."""
    if not is_reference(value):
        return value
    kind, _, target = value.partition(":")
    if kind == "env":
        found = os.environ.get(target)
        if found is None:
            raise SecretUnavailable(f"{field}: the environment variable {target} named by {value} is not set")
        return found
    try:
        return Path(target).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise SecretUnavailable(f"{field}: cannot read the secret file {target}: {reason}") from None


def resolve_secrets(values: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``values`` with every reference among them resolved (a header mapping, when it is sent)."""
    return {
        name: resolve_secret(value, f"{field}.{name}") if isinstance(value, str) else value
        for name, value in values.items()
    }


def refuse_inline(field: str, value: Any) -> None:
    """Raise ``ValidationError`` naming ``field`` when ``value`` holds a secret inline: a value whose name (the
    last part of ``field``) says secret, recursively through options and headers, or a URL with a password or a
    secret query parameter; references and everything else pass."""
    name = field.rpartition(".")[2]
    if isinstance(value, str) and value and is_secret_name(name) and not is_reference(value):
        raise ValidationError(f"is a secret and is not stored inline; {HOW}", field=field)
    if isinstance(value, Mapping):
        for key, item in value.items():
            refuse_inline(f"{field}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            refuse_inline(f"{field}[{index}]", item)
    elif isinstance(value, str) and "://" in value and not is_reference(value):
        _refuse_url(field, value)


def _refuse_url(field: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        raise ValidationError(
            "the URL carries a password (user:password@); put the URL in an environment "
            "variable or a file and write env:NAME or file:/path",
            field=field,
        )
    secret = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True) if is_secret_name(name)]
    if secret:
        raise ValidationError(
            f"the URL carries a secret in ?{secret[0]}=; send it in a header given by reference "
            f'(headers={{"X-Api-Key": "env:NAME"}}) or put the URL in env:NAME',
            field=field,
        )


# -- the CRM secret key, kept outside the database -------------------------------------------------------------


def secret_key() -> bytes:
    """The CRM secret key (32 bytes) from ``CRMKIT_SECRET_KEY``, else the key file (created on first use)."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        text = resolve_secret(configured, KEY_ENV)
        return hashlib.sha256(text.strip().encode()).digest()
    path = KEY_FILE.expanduser()
    try:
        if not path.exists():
            _create_key_file(path)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretUnavailable(
            f"cannot read or create the CRM secret key file {path}: "
            f"{getattr(exc, 'strerror', None) or exc}; set {KEY_ENV} instead"
        ) from None
    return hashlib.sha256(text.encode()).digest()


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600) unless another process just did: written aside, then linked
    into place, so no process ever reads a half-written key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret.key.")  # mode 0600
    try:
        with os.fdopen(handle, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        os.unlink(temporary)


def _pad(key: bytes, nonce: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, purpose + b"|" + nonce, hashlib.sha256).digest()


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    """``length`` bytes of pad: 32-byte blocks, the first the one a 32-byte secret has always been wrapped with."""
    blocks = (_pad(key, nonce, b"wrap" if n == 0 else b"wrap-%d" % n) for n in range(-(-length // 32)))
    return b"".join(blocks)[:length]


def wrap_secret(secret: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """``(wrapped, check)``: ``secret`` (a key of any length) XOR a pad derived from the CRM secret key and a
    unique ``nonce``, and a check value that tells a wrong key on :func:`unwrap`."""
    key = secret_key()
    wrapped = bytes(a ^ b for a, b in zip(secret, _stream(key, nonce, len(secret)), strict=True))
    return wrapped, _pad(key, nonce + secret, b"check")[:8]


def unwrap_secret(wrapped: bytes, nonce: bytes, check: bytes) -> bytes:
    """The secret :func:`wrap` wrapped; ``SecretUnavailable`` when the CRM secret key is not the one it used."""
    key = secret_key()
    secret = bytes(a ^ b for a, b in zip(wrapped, _stream(key, nonce, len(wrapped)), strict=True))
    if not hmac.compare_digest(_pad(key, nonce + secret, b"check")[:8], check):
        raise SecretUnavailable(
            f"a stored key was wrapped with another CRM secret key: restore the key "
            f"({KEY_ENV} or {KEY_FILE}) from your backup"
        )
    return secret
