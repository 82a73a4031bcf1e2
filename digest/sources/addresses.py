"""Which network addresses a feed fetch may reach, and the one lookup that decides it.

A feed URL's host is resolved once per request; the request is refused when
*any* of its addresses is not public (loopback, private, link-local,
multicast, reserved, unspecified, shared, or one of those wrapped in an IPv6
form: IPv4-mapped, 6to4, NAT64). The connection then goes to the addresses
that were checked, never to a second lookup's answer, so a name that
re-resolves somewhere else between the check and the connect gains nothing.
"""

from __future__ import annotations

import socket
import threading
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

ALLOW_HINT = "set DIGEST_FEED_ALLOW_PRIVATE=true to fetch feeds from such addresses"
_NAT64 = ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPv4Address | IPv6Address) -> str | None:
    """What kind of non-public address ``ip`` is ("loopback", "private", …), or None if public."""
    if isinstance(ip, IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return non_public_kind(inner)
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if flag:
            return kind
    return None


def resolve(host: str, port: int, within: float) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order.

    ``TimeoutError`` after ``within`` seconds (the resolver has no timeout of its
    own, so it runs in a daemon thread); ``OSError`` when the name does not resolve.
    """
    outcome: list[list[str] | OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except OSError as exc:
            outcome.append(exc)
        except UnicodeError as exc:  # a label the IDNA codec refuses (e.g. over 63 characters)
            outcome.append(OSError(f"{host} is not a valid host name ({exc})"))
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(within, 0.0)):
        raise TimeoutError(f"resolving {host}")
    found = outcome[0]
    if isinstance(found, OSError):
        raise found
    if not found:
        raise OSError(f"{host} has no addresses")
    return found


def refusal(host: str, addresses: list[str]) -> str | None:
    """Why a fetch may not connect to ``host`` at ``addresses`` (any one non-public), or None."""
    for text in addresses:
        kind = non_public_kind(ip_address(text))
        if kind is not None:
            article = "an" if kind[0] in "aeiou" else "a"
            subject = (
                f"{text} is {article}" if text == host else f"{host} resolves to {text}, {article}"
            )
            return f"{subject} {kind} address; {ALLOW_HINT}"
    return None
