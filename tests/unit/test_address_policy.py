"""The one judge of the addresses the platform connects to for sellers (outgoing webhooks):
IPv6 forms that carry an IPv4 address are judged by that address."""

from __future__ import annotations

import ipaddress

import pytest

from astra.domain.address_policy import address_allowed, embedded_ipv4


def _v4_in_forms(v4: str) -> dict[str, str]:
    """`v4` written in each IPv6 form that carries it."""
    n = int(ipaddress.IPv4Address(v4))
    hi, lo = n >> 16, n & 0xFFFF
    teredo_client = n ^ 0xFFFFFFFF
    public_server = int(ipaddress.IPv4Address("65.54.227.120"))
    return {
        "mapped": f"::ffff:{v4}",
        "compatible": f"::{v4}",
        "6to4": f"2002:{hi:x}:{lo:x}::1",
        # Teredo: 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>
        "teredo client": (f"2001:0:{public_server >> 16:x}:{public_server & 0xFFFF:x}:8000:"
                          f"63bf:{teredo_client >> 16:x}:{teredo_client & 0xFFFF:x}"),
        "teredo server": f"2001:0:{hi:x}:{lo:x}:8000:63bf:f7f7:f7f7",  # client 8.8.8.8
        "nat64": f"64:ff9b::{v4}",
        "nat64 local /96": f"64:ff9b:1:2::{v4}",
        # RFC 6052 /48 layout: bits 48-63, the zero u octet, bits 72-87.
        "nat64 local /48": f"64:ff9b:1:{hi:x}:{lo >> 8:x}:{(lo & 0xFF) << 8:x}::",
    }


INSIDE = ["169.254.169.254", "127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4",
          "100.64.0.1", "0.0.0.0"]


@pytest.mark.parametrize("v4", INSIDE)
@pytest.mark.parametrize("form", list(_v4_in_forms("8.8.8.8")))
def test_an_inside_ipv4_is_refused_in_every_ipv6_form(v4: str, form: str) -> None:
    address = ipaddress.IPv6Address(_v4_in_forms(v4)[form])
    if int(address) > 1:  # ::0.0.0.0 is ::, refused as the unspecified address
        assert ipaddress.IPv4Address(v4) in embedded_ipv4(address), (form, str(address))
    assert not address_allowed(address, allow_private=False), (form, str(address))


@pytest.mark.parametrize("form", [f for f in _v4_in_forms("8.8.8.8") if "local" not in f])
def test_a_public_ipv4_in_an_ipv6_form_is_allowed(form: str) -> None:
    address = ipaddress.IPv6Address(_v4_in_forms("8.8.8.8")[form])
    assert address_allowed(address, allow_private=False), (form, str(address))


def test_the_local_use_nat64_prefix_must_pass_under_each_reading() -> None:
    """Where a local NAT64 puts the IPv4 in 64:ff9b:1::/48 is its operator's choice: an address
    there is allowed only if every reading of it is public."""
    both = ipaddress.IPv6Address("64:ff9b:1:808:8:800:808:808")
    assert set(embedded_ipv4(both)) == {ipaddress.IPv4Address("8.8.8.8")}
    assert address_allowed(both, allow_private=False)
    for text in ("64:ff9b:1:2::8.8.8.8", "64:ff9b:1:808:8:800::", "64:ff9b:1:a00:1:800:808:808"):
        assert not address_allowed(ipaddress.ip_address(text), allow_private=False), text


def test_the_known_forms_of_the_metadata_address() -> None:
    for text in ("2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "::ffff:169.254.169.254",
                 "::169.254.169.254", "2001:0:4136:e378:8000:63bf:5601:5601"):
        assert not address_allowed(ipaddress.ip_address(text), allow_private=False), text


def test_plain_addresses() -> None:
    for text in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"):
        assert address_allowed(ipaddress.ip_address(text), allow_private=False), text
    for text in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::", "fe80::1",
                 "fc00::1", "224.0.0.1", "ff02::1", "2001:db8::1", "0.0.0.0"):
        assert not address_allowed(ipaddress.ip_address(text), allow_private=False), text


def test_development_allows_private_but_never_unspecified_or_multicast() -> None:
    for text in ("127.0.0.1", "::1", "10.0.0.1", "2002:7f00:1::1", "::ffff:127.0.0.1"):
        assert address_allowed(ipaddress.ip_address(text), allow_private=True), text
    for text in ("0.0.0.0", "::", "224.0.0.1", "::ffff:0.0.0.0", "2002::1", "64:ff9b::e000:1"):
        assert not address_allowed(ipaddress.ip_address(text), allow_private=True), text


def test_a_plain_ipv6_address_carries_nothing() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == ()
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) == ()
    assert embedded_ipv4(ipaddress.IPv6Address("::")) == ()
