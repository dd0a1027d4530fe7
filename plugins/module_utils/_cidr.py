# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CIDR parsing and overlap detection.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only so that modules, filters, tests and benchmarks share one implementation.
Overlap detection sorts once and sweeps; it never compares every pair.
"""

from __future__ import annotations

import ipaddress
import typing as t

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class CidrError(ValueError):
    """A CIDR string that cannot be used, with a suggested fix."""

    def __init__(self, value: str, reason: str, fix: str, corrected: t.Optional[str] = None) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.fix = fix
        self.corrected = corrected


def parse_cidr(value: t.Any) -> Network:
    """Parse one IPv4 or IPv6 network in CIDR notation, strictly.

    Host bits set (``10.244.1.0/16``) is an error whose ``corrected`` names the network the
    user most likely meant, because silently truncating would hide a typo in a Pod range.
    """
    if not isinstance(value, str) or not value.strip():
        raise CidrError(str(value), "not a CIDR string", "write it as address/prefix, e.g. 10.244.0.0/16")
    text = value.strip()
    if "/" not in text:
        raise CidrError(text, "missing the prefix length", "add the prefix length, e.g. %s/16" % text)
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as strict_error:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise CidrError(text, "not a valid IPv4 or IPv6 network (%s)" % strict_error,
                            "write it as address/prefix, e.g. 10.244.0.0/16 or fd00:10:244::/56") from None
        raise CidrError(text, "host bits are set", "use the network address %s" % loose, corrected=str(loose)) from None


def is_valid_cidr(value: t.Any) -> bool:
    try:
        parse_cidr(value)
    except CidrError:
        return False
    return True


def canonical_cidr(value: t.Any) -> str:
    """The network a CIDR with host bits set denotes (``10.244.1.0/16`` -> ``10.244.0.0/16``)."""
    return str(ipaddress.ip_network(str(value).strip(), strict=False))


def cidrs_overlap(left: t.Any, right: t.Any) -> bool:
    a = parse_cidr(left) if not isinstance(left, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else left
    b = parse_cidr(right) if not isinstance(right, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else right
    return a.version == b.version and a.overlaps(b)


def _span(network: Network) -> t.Tuple[int, int, int]:
    # Plain attribute arithmetic: num_addresses and broadcast_address are slow properties.
    first = int(network.network_address)
    return network.version, first, first + (1 << (network.max_prefixlen - network.prefixlen)) - 1


Tag = t.TypeVar("Tag")


def find_overlaps(items: t.Iterable[t.Tuple[Network, Tag]]) -> t.List[t.Tuple[Network, Tag, Network, Tag]]:
    """Every pair of overlapping networks, by one sort and one sweep.

    Two prefixes either nest or are disjoint, so after sorting by (family, first address,
    widest first) a network overlaps exactly the still-open networks whose last address is at
    or after its first address. The open list is a stack of nested prefixes, so the cost is
    O(n log n) plus the number of overlapping pairs reported.
    """
    spans = sorted(
        ((_span(net), net, tag) for net, tag in items),
        key=lambda entry: (entry[0][0], entry[0][1], -entry[0][2]),
    )
    found: t.List[t.Tuple[Network, Tag, Network, Tag]] = []
    open_stack: t.List[t.Tuple[t.Tuple[int, int, int], Network, t.Any]] = []
    for span, net, tag in spans:
        version, first, _last = span
        while open_stack and (open_stack[-1][0][0] != version or open_stack[-1][0][2] < first):
            open_stack.pop()
        for _open_span, open_net, open_tag in open_stack:
            found.append((open_net, open_tag, net, tag))
        open_stack.append((span, net, tag))
    return found


def overlap_components(
    items: t.Iterable[t.Tuple[Network, Tag]],
) -> t.List[t.List[t.Tuple[Network, Tag]]]:
    """Networks grouped by the widest network that contains them, keeping groups of two or more.

    Any two overlapping networks share such a root, so every overlap appears in exactly one
    component. Linear after the sort, whatever the number of pairs: a thousand clusters that
    reuse one range make one component, not half a million pairs.
    """
    spans = sorted(
        ((_span(net), net, tag) for net, tag in items),
        key=lambda entry: (entry[0][0], entry[0][1], -entry[0][2]),
    )
    components: t.List[t.List[t.Tuple[Network, Tag]]] = []
    current: t.List[t.Tuple[Network, Tag]] = []
    root: t.Optional[t.Tuple[int, int, int]] = None
    for span, net, tag in spans:
        if root is None or root[0] != span[0] or root[2] < span[1]:
            if len(current) > 1:
                components.append(current)
            current = []
            root = span
        current.append((net, tag))
    if len(current) > 1:
        components.append(current)
    return components


def overlapping_pairs(cidrs: t.Iterable[t.Any]) -> t.List[t.Tuple[str, str]]:
    """Pairs of overlapping CIDRs (as strings) among ``cidrs``; the filter-facing form."""
    items = [(parse_cidr(cidr), str(cidr).strip()) for cidr in cidrs]
    return [(left_tag, right_tag) for _l, left_tag, _r, right_tag in find_overlaps(items)]


def covering_network(networks: t.Iterable[Network]) -> t.Optional[Network]:
    """The smallest single network that contains every one of ``networks`` (one address family).

    None for an empty input. Used where a component takes one range for many (Cilium's native
    routing CIDR must span every Pod range of a ClusterMesh).
    """
    nets = list(networks)
    if not nets:
        return None
    if len({n.version for n in nets}) != 1:
        raise ValueError("covering_network: mixed address families")
    low = min(int(n.network_address) for n in nets)
    high = max(int(n.broadcast_address) for n in nets)
    width = nets[0].max_prefixlen
    # The common leading bits of the lowest and highest address are the covering prefix.
    prefix = width - (low ^ high).bit_length()
    host_bits = width - prefix
    return type(nets[0])(((low >> host_bits) << host_bits, prefix))
