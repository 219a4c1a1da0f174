"""Fetching http(s) media, only ever called when the caller allowed fetching."""

from __future__ import annotations

import urllib.request

from modalbridge.media.errors import MediaError

FETCH_TIMEOUT_S = 30.0


def fetch_url(url: str, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """GET ``url`` and return its body. Only called when fetching was allowed."""
    request = urllib.request.Request(url, headers={"User-Agent": "modalbridge"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except Exception as exc:
        raise MediaError(f"{url}: could not fetch ({exc})") from None
