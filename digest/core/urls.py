"""The canonical form of a story URL, which stories are deduplicated on.

Pure functions: ``digest.sources.ingest`` compares stories by it, and the
``stories.canonical_url`` column (filled by migration 0002 for older rows) holds it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a click came from, never what the page is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """``url`` normalized for comparison: scheme and host lower case, default port,
    tracking parameters, fragment and trailing slash dropped, other parameters sorted."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path.rstrip("/")
    params = parse_qsl(parts.query, keep_blank_values=True)
    query = sorted((k, v) for k, v in params if not is_tracking_param(k))
    return urlunsplit((scheme, host, path, urlencode(query), ""))
