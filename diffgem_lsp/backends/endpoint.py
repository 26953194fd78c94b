"""Where a remote model server is and how to reach it safely: endpoint parsing, the TLS rule, the API key.

Pure policy, no I/O beyond reading the key: the HTTP client itself lives in `vllm.py`. The key is held in
a `Secret`, whose repr and str never show it, so it cannot reach a log line or a status report.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class EndpointError(ValueError):
    """An endpoint or key source the server refuses, with a message meant for the user."""


class Secret:
    """A bearer token that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: `base_url` for the HTTP client, `uds` when it is a unix socket."""

    base_url: str  # scheme://host[:port], without a trailing /v1
    uds: str | None = None
    tls: bool = False

    @property
    def display(self) -> str:
        """What status reports and messages show (never a key)."""
        return f"unix:{self.uds}" if self.uds else self.base_url


def _is_loopback(host: str) -> bool:
    # Only literal loopback addresses: a name such as "localhost" goes through the resolver (hosts file,
    # DNS), which could send plain HTTP off the machine.
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(raw: str) -> Endpoint:
    """`https://host[:port][/v1]`, `http://127.0.0.1:port[/v1]` (or `[::1]`), or `unix:/path/to.sock`.

    Plain HTTP is accepted only to a loopback address or a unix socket: anything else carries code and
    the API key over the network, so it must be TLS (verified against the system's trust store).
    """
    text = raw.strip()
    if not text:
        raise EndpointError("diffgem.endpoint is empty: set it to the vLLM server's URL")
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        path = path[2:] if path.startswith("//") else path
        if not path.startswith("/"):
            raise EndpointError(f"unix socket endpoint needs an absolute path, got {raw!r}")
        return Endpoint(base_url="http://localhost", uds=path)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(
            f"endpoint {raw!r} is not an http(s):// URL or unix:/path socket (e.g. https://gpu-box:8000)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise EndpointError(
            "endpoint must not carry credentials, a query or a fragment: put the key in apiKeyEnv or apiKeyFile"
        )
    host = parts.hostname
    if parts.scheme == "http" and not _is_loopback(host):
        raise EndpointError(
            f"plain http:// is only allowed to 127.0.0.1, ::1 or a unix socket; use https:// for {host}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"endpoint {raw!r}: {exc}") from exc
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return Endpoint(base_url=f"{parts.scheme}://{netloc}{path}", tls=parts.scheme == "https")


def load_api_key(env_name: str, file_path: str) -> Secret | None:
    """The key from the named environment variable, or from a file only its owner can read.

    Settings name where the key is, never the key itself: settings files are synced, shared and shown
    in editors' UIs. A key file readable by group or others is refused (as ssh refuses such keys).
    """
    if env_name and file_path:
        raise EndpointError("set apiKeyEnv or apiKeyFile, not both")
    if env_name:
        value = os.environ.get(env_name, "").strip()
        if not value:
            raise EndpointError(f"apiKeyEnv names ${env_name}, which is not set or empty")
        return Secret(value)
    if file_path:
        path = Path(file_path).expanduser()
        try:
            info = path.stat()
        except OSError as exc:
            raise EndpointError(f"apiKeyFile {path}: {exc.strerror}") from exc
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise EndpointError(
                f"apiKeyFile {path} is readable by other users: run chmod 600 {path}"
            )
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise EndpointError(f"apiKeyFile {path} is empty")
        return Secret(value)
    return None
