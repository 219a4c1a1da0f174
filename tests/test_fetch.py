"""Bounded fetching: address classification (pure, connects nowhere), refusal BEFORE any connection
(seen through Python's own ``socket.connect`` audit events), and real requests only to loopback servers
started here, with loopback explicitly allowed: total deadline against a trickling server, byte cap,
redirect rules, host allowlist, schemes."""

from __future__ import annotations

import http.server
import sys
import threading
import time

import pytest

from modalbridge import Embedder, Image, MediaError
from modalbridge.media import FetchPolicy, classify_address, fetch_url
from modalbridge.media.fetch import check_url

# -- address classification: a table written from the RFCs, not from the code --------------------

ADDRESSES = {
    "8.8.8.8": "public",
    "1.1.1.1": "public",
    "93.184.216.34": "public",
    "2606:4700:4700::1111": "public",
    "127.0.0.1": "loopback",
    "127.9.8.7": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped IPv6 is the IPv4 address it carries
    "10.0.0.1": "private",
    "10.255.255.254": "private",
    "172.16.0.1": "private",
    "172.31.255.1": "private",
    "192.168.1.1": "private",
    "::ffff:192.168.0.10": "private",
    "fd12:3456::1": "private",  # unique local fc00::/7
    "169.254.169.254": "link-local",  # cloud metadata endpoints live here
    "fe80::1": "link-local",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "100.64.0.1": "reserved",  # carrier-grade NAT (RFC 6598): not globally routable
    "240.0.0.1": "reserved",  # class E
}


@pytest.mark.parametrize("address, kind", sorted(ADDRESSES.items()))
def test_classify_address(address, kind):
    assert classify_address(address) == kind


def test_public_neighbours_of_private_ranges_are_public():
    # One step outside each private block: a classifier that over-blocks fails here.
    assert [classify_address(a) for a in ("11.0.0.1", "172.15.255.255", "172.32.0.1", "192.169.0.1")] == ["public"] * 4


# -- refusal before any connection -------------------------------------------------------------------

_connects: list = []
_recording = threading.Event()


def _audit(event, args):
    if event == "socket.connect" and _recording.is_set():
        _connects.append(args[1])


sys.addaudithook(_audit)


def _record_connects(function):
    _connects.clear()
    _recording.set()
    try:
        function()
    finally:
        _recording.clear()
    return list(_connects)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://10.1.2.3/cat.jpg", "host '10.1.2.3' is at private address 10.1.2.3"),
        ("http://169.254.169.254/latest/meta-data", "is at link-local address 169.254.169.254"),
        ("http://[::1]:8000/x.jpg", "host '::1' is at loopback address ::1"),
        ("http://localhost:1/x.jpg", "is at loopback address"),
        ("http://0.0.0.0/x.jpg", "is at unspecified address 0.0.0.0"),
        ("ftp://8.8.8.8/x.jpg", "only http and https URLs can be fetched, not ftp"),
        ("file:///etc/passwd", "file:// URLs are never fetched"),
    ],
)
def test_refused_before_any_connection(url, reason):
    errors = []

    def attempt():
        with pytest.raises(MediaError) as error:
            fetch_url(url)
        errors.append(str(error.value))

    assert _record_connects(attempt) == []
    assert errors[0].startswith(f"{url}: ") and reason in errors[0]


def test_the_audit_hook_does_see_connections(server):
    # The proof above is only worth something if a real fetch shows up here.
    connects = _record_connects(lambda: fetch_url(f"{server.url}/cat.jpg", ALLOW_LOOPBACK))
    assert connects == [("127.0.0.1", server.port)]


def test_allowlist_refuses_other_hosts_before_connecting():
    policy = FetchPolicy(allowed_hosts=(".example.com",))
    for url in ("https://evil.test/x.jpg", "https://example.com.evil.test/x.jpg"):
        assert _record_connects(lambda: pytest.raises(MediaError, fetch_url, url, policy)) == []
    # Allowed names pass the host check and reach the address check (resolved by a stub resolver: no DNS).
    _, address = check_url("https://img.example.com/x.jpg", policy, resolver=lambda host, port: ["93.184.216.34"])
    assert address == "93.184.216.34"
    with pytest.raises(MediaError, match="private address 10.0.0.7"):
        check_url("https://img.example.com/x.jpg", policy, resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])


def test_a_host_lookup_that_never_answers_ends_at_the_deadline():
    # getaddrinfo takes no timeout; a name server that does not answer holds it for its retries. Tests send
    # no DNS queries, so the lookup that hangs is the resolver fetch_url takes (the seam check_url uses).
    release, calls = threading.Event(), []

    def unanswered_lookup(host, port):
        calls.append((host, port))
        release.wait(30)
        return ["93.184.216.34"]

    url = "https://media.example.com/cat.jpg"
    start = time.monotonic()
    def attempt():
        with pytest.raises(MediaError) as error:
            fetch_url(url, FetchPolicy(timeout_s=1), resolver=unanswered_lookup)
        assert str(error.value) == (
            f"{url}: could not resolve host 'media.example.com' within the 1 s deadline (fetch_timeout_s)"
        )

    try:
        connects = _record_connects(attempt)
    finally:
        release.set()
    elapsed = time.monotonic() - start
    assert calls == [("media.example.com", 443)] and connects == []
    assert 0.9 <= elapsed < 2.0, elapsed
    # a lookup that answers in time is used as before, and its failure keeps its own message
    with pytest.raises(MediaError, match=r"cannot resolve host 'media\.example\.com' \(no such host\)"):
        fetch_url(url, FetchPolicy(timeout_s=1), resolver=lambda host, port: (_ for _ in ()).throw(OSError("no such host")))


# -- real requests to a loopback server --------------------------------------------------------------

ALLOW_LOOPBACK = FetchPolicy(allow_private=True, timeout_s=5)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        if self.path == "/cat.jpg":
            self._send(200, self.server.body)
        elif self.path == "/trickle.jpg":  # headers at once, then one byte every 2 s
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(2)
        elif self.path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif self.path == "/big-undeclared":
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until the cap
            try:
                for _ in range(64):
                    self.wfile.write(b"y" * 4096)
            except OSError:
                return
        elif self.path == "/same-host":
            self._redirect("/cat.jpg")
        elif self.path == "/other-host":
            self._redirect(f"http://localhost:{self.server.server_port}/cat.jpg")
        elif self.path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif self.path == "/loop":
            self._redirect("/loop")
        else:
            self._send(404, b"")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def server(image_paths):
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    with open(image_paths[0], "rb") as f:
        httpd.body = f.read()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    httpd.port = httpd.server_port
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_fetches_the_exact_bytes_when_loopback_is_allowed(server):
    assert fetch_url(f"{server.url}/cat.jpg", ALLOW_LOOPBACK) == server.body
    assert fetch_url(f"{server.url}/same-host", ALLOW_LOOPBACK) == server.body  # same-host redirect


def test_loopback_is_refused_by_default_and_the_server_sees_nothing(server):
    before = list(server.requests)
    embedder = Embedder("unused-model-name", allow_fetch=True)
    with pytest.raises(MediaError, match=r"is at loopback address 127\.0\.0\.1, which is not fetched unless fetch_allow_private=True"):
        fetch_url(f"{server.url}/cat.jpg", embedder.encode_settings.fetch_policy())
    assert server.requests == before


def test_total_deadline_against_a_trickling_server(server):
    start = time.monotonic()
    with pytest.raises(MediaError, match=r"/trickle\.jpg: could not fetch within the 3 s deadline \(fetch_timeout_s\)"):
        fetch_url(f"{server.url}/trickle.jpg", FetchPolicy(allow_private=True, timeout_s=3))
    elapsed = time.monotonic() - start
    assert 2.9 <= elapsed < 4.5, elapsed  # at the deadline, not after the next trickled byte or 100 of them


def test_byte_cap(server):
    with pytest.raises(MediaError, match=r"the body is 1000000000 bytes, more than fetch_max_bytes=1000"):
        fetch_url(f"{server.url}/big-declared", FetchPolicy(allow_private=True, max_bytes=1000))
    with pytest.raises(MediaError, match=r"the body is more than fetch_max_bytes=10000 bytes"):
        fetch_url(f"{server.url}/big-undeclared", FetchPolicy(allow_private=True, max_bytes=10_000))


def test_redirects_to_another_host_or_scheme_only_where_allowed(server):
    other = f"http://localhost:{server.port}/cat.jpg"
    with pytest.raises(MediaError, match=rf"redirected to {other}, another host or scheme"):
        fetch_url(f"{server.url}/other-host", ALLOW_LOOPBACK)
    allowed = FetchPolicy(allow_private=True, allowed_hosts=("127.0.0.1", "localhost"), timeout_s=5)
    assert fetch_url(f"{server.url}/other-host", allowed) == server.body
    with pytest.raises(MediaError, match="redirected to file:///etc/passwd, another host or scheme"):
        fetch_url(f"{server.url}/to-file", allowed)
    with pytest.raises(MediaError, match="more than 5 redirects"):
        fetch_url(f"{server.url}/loop", ALLOW_LOOPBACK)
    with pytest.raises(MediaError, match=r"could not fetch \(HTTP 404\)"):
        fetch_url(f"{server.url}/missing.jpg", ALLOW_LOOPBACK)


def test_settings_are_bounded():
    for bad in ({"fetch_timeout_s": 0}, {"fetch_timeout_s": 1e9}, {"fetch_max_bytes": 0}, {"fetch_allowed_hosts": "a.com"},
                {"fetch_allow_private": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Embedder("m", **bad)


def test_file_urls_and_directories_get_the_right_message(tmp_path, image_paths):
    embedder = Embedder("unused", allow_fetch=True)
    from modalbridge.media import decode_image

    with pytest.raises(MediaError) as error:
        decode_image(Image(f"file://{image_paths[0]}"), allow_fetch=True)
    assert str(error.value) == (
        f"file://{image_paths[0]}: file:// URLs are not read; pass the local path itself, e.g. Image({image_paths[0]!r})"
    )
    with pytest.raises(MediaError, match=rf"^{tmp_path}: is a directory, not a file$"):
        decode_image(Image(str(tmp_path)))
    assert embedder.encode_settings.fetch_policy().allow_private is False
