"""The SSRF policy of §4.5: which resolved addresses an outbound request may connect to.

A host is resolved once per connection and the connection is made to the vetted address itself,
so a DNS answer cannot change between the check and the connect. Blocked: loopback, private
(RFC 1918, 100.64/10 shared space, fc00::/7), link-local (169.254/16, fe80::/10), unspecified,
multicast, reserved and every other non-global range, and IPv6 forms that embed an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the
address they embed. ``allow_private_networks`` turns the check off; ``allowed_hosts`` lets
chosen names (exact, or ``*.example.com`` for subdomains), addresses and CIDRs through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RequestBlocked(Exception):
    """The guard refused to connect; the message is the node's error text."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"Access to {host} ({address}) is blocked")
        self.host = host
        self.address = address


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (embedded IPv4 judged by itself)."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return False
    if ip.is_private or ip.is_reserved or ip in SHARED_SPACE:
        return False
    return ip.is_global


@dataclass(frozen=True)
class SsrfPolicy:
    allow_private_networks: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, *, allow_private_networks: bool = False, allowed_hosts: Iterable[str] = ()) -> SsrfPolicy:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in allowed_hosts:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry.startswith("."):
                suffixes.append(entry)
            else:
                names.add(entry)
        return cls(allow_private_networks, frozenset(names), tuple(suffixes), tuple(networks))

    def name_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.names or any(name.endswith(suffix) for suffix in self.suffixes)

    def check(self, host: str, address: str) -> None:
        """Raise ``RequestBlocked`` unless ``host`` may be reached at ``address``."""
        if self.allow_private_networks or self.name_allowed(host):
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        candidates = [ip, *([inner] if (inner := embedded_ipv4(ip)) is not None else [])]
        for candidate in candidates:
            if any(candidate in net for net in self.networks if net.version == candidate.version):
                return
        if not is_public(ip):
            raise RequestBlocked(host, address)
