"""Which addresses the platform may connect to on a seller's behalf (outgoing webhooks).

Production allows only public addresses, so a seller cannot aim the platform at its own network
(the cloud metadata service on 169.254.169.254, the admin panel on loopback, the database on a
private network). An IPv6 address can carry an IPv4 one that the host's stack or a gateway on
the way turns back into IPv4: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), 6to4
(2002:aabb:ccdd::/48), Teredo (2001:0::/32, a server and an obfuscated client address) and
NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48). Such an address is judged by every IPv4
address it carries, so 2002:a9fe:a9fe::1 is refused like 169.254.169.254, and 64:ff9b::808:808
is allowed like 8.8.8.8.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LOW32 = 0xFFFFFFFF


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (none for a plain IPv6 address)."""
    value = int(address)
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        # (server, client); the client is stored XOR 0xffffffff in the last 32 bits, and
        # ipaddress undoes that. Either end may be where a packet goes.
        return address.teredo
    if address in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(value & _LOW32),)
    if address in _NAT64_LOCAL_USE:
        # The prefix a local NAT64 uses within this /48 is its operator's choice: the IPv4
        # may sit in the last 32 bits (a /96) or, for the /48 itself (RFC 6052), in bits
        # 48-63 and 72-87 around the zero "u" octet. Each reading must pass.
        split = ((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF
        return (ipaddress.IPv4Address(value & _LOW32), ipaddress.IPv4Address(split))
    if address in _IPV4_COMPATIBLE and value > 1:  # :: and ::1 are IPv6's own
        return (ipaddress.IPv4Address(value & _LOW32),)
    return ()


def _plain_allowed(address: Address, allow_private: bool) -> bool:
    if address.is_unspecified or address.is_multicast:
        return False
    if allow_private:
        return True
    return address.is_global and not address.is_reserved and not address.is_link_local


def address_allowed(address: Address, allow_private: bool) -> bool:
    """Whether the platform may connect to `address`. `allow_private` (development, tests)
    also allows loopback and private networks; never the unspecified or multicast ones."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried:
            return all(_plain_allowed(v4, allow_private) for v4 in carried)
    return _plain_allowed(address, allow_private)
