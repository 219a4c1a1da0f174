"""Fetching http(s) media: opt-in, and bounded in every way a URL from untrusted data could abuse.

Only called when the caller allowed fetching (``allow_fetch=True``). A :class:`FetchPolicy` then bounds it:

- only ``http`` and ``https`` (``file://`` and other schemes are refused with the right advice);
- one **total** deadline for the whole fetch, host lookups and redirects included (a server trickling a
  byte every few seconds, or a name server that never answers, cannot hold the call past it), and a
  **byte cap** (checked against ``Content-Length`` first, then while reading);
- the host is resolved once and every address is classified (:func:`classify_address`): loopback,
  private, link-local and other non-public addresses are refused unless ``allow_private=True``,
  BEFORE any connection is made, and the connection goes to the address that was checked (no second
  DNS answer can swap it);
- redirects: at most ``max_redirects``, same host (http -> https upgrade allowed), or to a host in
  ``allowed_hosts``; every hop is checked like the first URL;
- optional ``allowed_hosts``: only those hosts (exact names, or ``.example.com`` for subdomains).

::

    policy = FetchPolicy(timeout_s=10, max_bytes=20 * 2**20, allowed_hosts=("images.example.com",))
    data = fetch_url("https://images.example.com/cat.jpg", policy)
    classify_address("10.1.2.3")   # "private" (no connection made)
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from modalbridge.media.errors import MediaError

FETCH_TIMEOUT_S = 30.0
"""Default total deadline of one fetch, redirects included."""
FETCH_MAX_BYTES = 64 * 2**20
"""Default byte cap of one fetched body (64 MiB)."""
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchPolicy:
    """The bounds of one fetch. Every field is also an encode setting of the Embedder and Reranker
    (``fetch_timeout_s``, ``fetch_max_bytes``, ``fetch_allowed_hosts``, ``fetch_allow_private``)."""

    timeout_s: float = FETCH_TIMEOUT_S
    """Total deadline in seconds for the whole fetch (connect, redirects, body). 0 < timeout_s <= 3600."""
    max_bytes: int = FETCH_MAX_BYTES
    """Largest body accepted, in bytes. 1 <= max_bytes <= 2**34."""
    allowed_hosts: tuple[str, ...] | None = None
    """Only these hosts (``"cdn.example.com"``, or ``".example.com"`` for it and its subdomains);
    ``None``: any host with a public address."""
    allow_private: bool = False
    """Also fetch from loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local and other
    non-public addresses. Off: a URL from untrusted data cannot reach the local network."""
    max_redirects: int = MAX_REDIRECTS

    def __post_init__(self) -> None:
        check_fetch_settings(self.timeout_s, self.max_bytes, self.allowed_hosts, self.allow_private)
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts", tuple(h.lower().rstrip(".") for h in self.allowed_hosts))
        if not isinstance(self.max_redirects, int) or not 0 <= self.max_redirects <= 20:
            raise ValueError(f"max_redirects must be between 0 and 20, got {self.max_redirects!r}")


def check_fetch_settings(timeout_s, max_bytes, allowed_hosts, allow_private) -> None:
    """The bound checks of the fetch settings (shared by :class:`FetchPolicy` and the settings classes)."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 3600:
        raise ValueError(f"fetch_timeout_s must be a number of seconds in (0, 3600], got {timeout_s!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= 2**34:
        raise ValueError(f"fetch_max_bytes must be an integer in [1, 2**34], got {max_bytes!r}")
    if allowed_hosts is not None:
        if isinstance(allowed_hosts, str) or not all(isinstance(h, str) and h.strip(".") for h in allowed_hosts):
            raise ValueError(f"fetch_allowed_hosts must be a list of host names, got {allowed_hosts!r}")
    if not isinstance(allow_private, bool):
        raise ValueError(f"fetch_allow_private must be True or False, got {allow_private!r}")


def classify_address(address: str) -> str:
    """What kind of address an IP literal is: ``"public"``, ``"loopback"``, ``"private"``,
    ``"link-local"``, ``"multicast"``, ``"unspecified"`` or ``"reserved"`` (anything else that is not
    globally routable: shared 100.64/10, documentation, benchmarking ranges...). IPv4-mapped IPv6
    addresses are classified as the IPv4 address they carry. Pure: it connects nowhere."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private and not ip.is_reserved:
        return "private"
    if not ip.is_global:
        return "reserved"
    return "public"


def host_allowed(host: str, allowed_hosts: tuple[str, ...] | None) -> bool:
    """Whether ``host`` matches the allowlist (exact name, or ``.suffix`` for a domain and its subdomains)."""
    if allowed_hosts is None:
        return True
    host = host.lower().rstrip(".")
    return any(host == a or (a.startswith(".") and (host.endswith(a) or host == a[1:])) for a in allowed_hosts)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IP literals resolve to themselves, without a lookup)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve_within(resolver: Resolver, host: str, port: int, seconds: float | None, url: str, policy: FetchPolicy) -> list[str]:
    """``resolver(host, port)``, given up on after ``seconds``: ``getaddrinfo`` takes no timeout and a
    name server that does not answer holds it for the resolver's own retries (tens of seconds), so the
    lookup runs in a daemon thread that is left behind (it ends when the lookup does) if it is late."""
    if seconds is None:
        return resolver(host, port)
    outcome: list = []

    def lookup() -> None:
        try:
            outcome.append((True, resolver(host, port)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    worker = threading.Thread(target=lookup, name=f"modalbridge-resolve-{host}", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise MediaError(
            f"{url}: could not resolve host {host!r} within the {policy.timeout_s:g} s deadline (fetch_timeout_s)"
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def check_url(
    url: str, policy: FetchPolicy, resolver: Resolver = resolve, timeout_s: float | None = None
) -> tuple[urllib.parse.SplitResult, str]:
    """Refuse ``url`` by scheme, host allowlist or address class, before connecting; returns the parsed
    URL and the (checked) address to connect to. Raises :class:`MediaError` naming the URL.
    ``timeout_s``: give up on the host lookup after this long (what is left of the fetch's deadline)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        raise MediaError(f"{url}: file:// URLs are never fetched; pass the local path itself, e.g. Image('/path/to/file')")
    if scheme not in ("http", "https"):
        raise MediaError(f"{url}: only http and https URLs can be fetched, not {scheme or 'a relative URL'}")
    host = parts.hostname
    if not host:
        raise MediaError(f"{url}: the URL has no host")
    if not host_allowed(host, policy.allowed_hosts):
        raise MediaError(f"{url}: host {host!r} is not in fetch_allowed_hosts ({', '.join(policy.allowed_hosts or ())})")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise MediaError(f"{url}: {exc}") from None
    try:
        addresses = _resolve_within(resolver, host, port, timeout_s, url, policy)
    except OSError as exc:
        raise MediaError(f"{url}: cannot resolve host {host!r} ({exc})") from None
    if not addresses:
        raise MediaError(f"{url}: host {host!r} has no address")
    if not policy.allow_private:
        for address in addresses:
            kind = classify_address(address)
            if kind != "public":
                raise MediaError(
                    f"{url}: host {host!r} is at {kind} address {address}, which is not fetched unless "
                    "fetch_allow_private=True"
                )
    return parts, addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the host name resolves to next."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _redirect_allowed(current: urllib.parse.SplitResult, target: urllib.parse.SplitResult, policy: FetchPolicy) -> bool:
    same_host = (current.hostname or "").lower() == (target.hostname or "").lower() and current.port == target.port
    scheme_ok = target.scheme == current.scheme or (current.scheme == "http" and target.scheme == "https")
    if same_host and scheme_ok:
        return True
    return policy.allowed_hosts is not None and host_allowed(target.hostname or "", policy.allowed_hosts) and scheme_ok


def fetch_url(url: str, policy: FetchPolicy | None = None, resolver: Resolver = resolve) -> bytes:
    """GET ``url`` within ``policy`` (see the module doc) and return its body; a :class:`MediaError`
    naming the URL otherwise. Only called when fetching was allowed."""
    policy = policy or FetchPolicy()
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for _hop in range(policy.max_redirects + 1):
        parts, address = check_url(current, policy, resolver, timeout_s=_remaining(deadline, url, policy))
        status, location, body = _get(current, parts, address, policy, deadline, url)
        if status in _REDIRECTS and location:
            target = urllib.parse.urljoin(current, location)
            target_parts = urllib.parse.urlsplit(target)
            if not _redirect_allowed(parts, target_parts, policy):
                raise MediaError(
                    f"{url}: redirected to {target}, another host or scheme; add its host to "
                    "fetch_allowed_hosts to follow it"
                )
            current = target
            continue
        if not 200 <= status < 300:
            raise MediaError(f"{url}: could not fetch (HTTP {status})")
        return body
    raise MediaError(f"{url}: more than {policy.max_redirects} redirects")


def _remaining(deadline: float, url: str, policy: FetchPolicy) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise MediaError(f"{url}: could not fetch within the {policy.timeout_s:g} s deadline (fetch_timeout_s)")
    return left


def _get(current: str, parts, address: str, policy: FetchPolicy, deadline: float, url: str) -> tuple[int, str | None, bytes]:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connection_type = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(parts.hostname, port, address, _remaining(deadline, url, policy))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    watchdog = None
    try:
        connection.connect()
        sock = connection.sock
        # Per-read socket timeouts cannot bound a server that trickles: at the deadline the watchdog
        # shuts the socket down, which ends any read in progress.
        watchdog = threading.Timer(_remaining(deadline, url, policy), _shutdown, (sock,))
        watchdog.daemon = True
        watchdog.start()
        connection.request("GET", path, headers={"User-Agent": "modalbridge", "Accept-Encoding": "identity"})
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            return response.status, response.getheader("Location"), b""
        if not 200 <= response.status < 300:
            return response.status, None, b""
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > policy.max_bytes:
            raise MediaError(
                f"{url}: the body is {int(length)} bytes, more than fetch_max_bytes={policy.max_bytes}"
            )
        chunks, total = [], 0
        while True:
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > policy.max_bytes:
                raise MediaError(f"{url}: the body is more than fetch_max_bytes={policy.max_bytes} bytes")
            chunks.append(chunk)
        _remaining(deadline, url, policy)  # a body cut short by the watchdog is a timeout, not a body
        return response.status, None, b"".join(chunks)
    except MediaError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        _remaining(deadline, url, policy)
        raise MediaError(f"{url}: could not fetch ({type(exc).__name__}: {exc})") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
