"""Where models live and whether the network may be used, read from the environment at call time.

huggingface_hub reads ``HF_HUB_CACHE`` / ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` once, when it is imported; mrdiff
reads them when a command runs (so the CLI never imports huggingface_hub just to start, and a variable set
later in the process still counts). :func:`hub_reachable` is a one-second TCP probe so that an unplugged
network fails fast instead of waiting for huggingface_hub's retries.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds allowed for the pre-flight TCP connect to the Hub (env ``MRDIFF_HUB_CONNECT_TIMEOUT``).
CONNECT_TIMEOUT_S = 1.0

_TRUE = {"1", "ON", "YES", "TRUE"}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in _TRUE


def is_offline(offline: bool | None = None) -> bool:
    """Offline when asked (``--offline``) or when ``HF_HUB_OFFLINE`` / ``MRDIFF_OFFLINE`` is set."""
    return bool(offline) or _env_true("HF_HUB_OFFLINE") or _env_true("MRDIFF_OFFLINE")


def hf_frozen_offline() -> bool:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import; if it was set then, it still blocks requests.
    (Read from ``sys.modules`` so that asking does not import huggingface_hub.)"""
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def offline_reason(offline: bool | None) -> str:
    """The switches that put mrdiff offline, for error messages ('`offline`, HF_HUB_OFFLINE=1': the parameter in
    backticks, rendered as its flag by the CLI)."""
    reasons = []
    if offline:
        reasons.append("`offline`")
    if _env_true("HF_HUB_OFFLINE") or hf_frozen_offline():
        reasons.append("HF_HUB_OFFLINE=1")
    if _env_true("MRDIFF_OFFLINE"):
        reasons.append("MRDIFF_OFFLINE=1")
    return ", ".join(reasons) or "offline"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(os.path.expandvars(env[var])).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def cache_root(cache_dir: str | os.PathLike | None) -> Path:
    """``cache_dir`` when given, else :func:`hf_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def bundled_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of the bundled defaults: the argument, else ``MRDIFF_WEIGHTS_DIR``, else ``mrdiff_cli/weights``."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("MRDIFF_WEIGHTS_DIR"):
        return Path(os.environ["MRDIFF_WEIGHTS_DIR"]).expanduser()
    return Path(__file__).resolve().parents[2] / "weights"


def _connect_timeout() -> float:
    try:
        return float(os.environ.get("MRDIFF_HUB_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S))
    except ValueError:
        return CONNECT_TIMEOUT_S


def _probe_target(endpoint: str) -> tuple[str, int] | None:
    """(host, port) a connection to ``endpoint`` opens first: the endpoint, or the proxy in front of it."""
    import urllib.request  # only when probing: keeps `mrdiff --help` fast
    url = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
    if not url.hostname:
        return None
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if proxy and not urllib.request.proxy_bypass(host):
            purl = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if purl.hostname:
                host, port = purl.hostname, purl.port or (443 if purl.scheme == "https" else 80)
    except Exception:  # pragma: no cover - proxy detection is best effort
        pass
    return host, port


def hub_reachable(endpoint: str | None = None, timeout: float | None = None) -> bool:
    """Quick TCP probe of the Hub endpoint (or of the proxy in front of it). Bounded to ~``timeout`` s,
    DNS included (the probe runs in a daemon thread), so an unplugged network fails fast."""
    timeout = _connect_timeout() if timeout is None else timeout
    target = _probe_target(endpoint or hub_endpoint())
    if target is None:
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(target, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="mrdiff-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    return bool(result and result[0])
