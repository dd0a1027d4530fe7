"""The sweep must agree with the pairwise definition of overlap on every input."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _cidr


@pytest.mark.parametrize("text,expected", [
    ("10.244.0.0/16", "10.244.0.0/16"),
    (" 10.0.0.0/8 ", "10.0.0.0/8"),
    ("fd00:10:244::/56", "fd00:10:244::/56"),
    ("192.168.1.7/32", "192.168.1.7/32"),
])
def test_parse_valid(text, expected):
    assert str(_cidr.parse_cidr(text)) == expected


@pytest.mark.parametrize("text,corrected", [
    ("10.244.1.0/16", "10.244.0.0/16"),
    ("fd00:10:244::1/56", "fd00:10:244::/56"),
])
def test_host_bits_name_the_corrected_network(text, corrected):
    with pytest.raises(_cidr.CidrError) as err:
        _cidr.parse_cidr(text)
    assert err.value.corrected == corrected
    assert corrected in err.value.fix


@pytest.mark.parametrize("text", ["", "10.0.0.0", "10.0.0.0/33", "300.1.1.1/8", "banana/8", None, 17])
def test_invalid(text):
    with pytest.raises(_cidr.CidrError):
        _cidr.parse_cidr(text)
    assert _cidr.is_valid_cidr(text) is False


def test_families_never_overlap():
    assert not _cidr.cidrs_overlap("0.0.0.0/0", "::/0")
    assert _cidr.cidrs_overlap("10.0.0.0/8", "10.1.0.0/16")


def _random_networks(rng, count):
    nets = []
    for _index in range(count):
        if rng.random() < 0.5:
            prefix = rng.randint(8, 24)
            addr = rng.getrandbits(32) & ~((1 << (32 - prefix)) - 1) & 0x0FFFFFFF | 0x0A000000
            nets.append(ipaddress.ip_network((addr & ~((1 << (32 - prefix)) - 1), prefix)))
        else:
            prefix = rng.randint(48, 64)
            addr = (0xFD00 << 112) | (rng.getrandbits(24) << 80)
            nets.append(ipaddress.ip_network((addr & ~((1 << (128 - prefix)) - 1), prefix)))
    return nets


@pytest.mark.parametrize("seed", range(20))
def test_sweep_finds_exactly_the_pairwise_overlaps(seed):
    rng = random.Random(seed)
    nets = _random_networks(rng, 60)
    items = list(zip(nets, range(len(nets))))
    expected = {frozenset((i, j)) for (a, i), (b, j) in itertools.combinations(items, 2)
                if a.version == b.version and a.overlaps(b)}
    found = {frozenset((i, j)) for _a, i, _b, j in _cidr.find_overlaps(items)}
    assert found == expected
    # Components partition the overlaps: every overlapping pair shares one component.
    component_of = {}
    for index, component in enumerate(_cidr.overlap_components(items)):
        for _net, tag in component:
            component_of[tag] = index
    for pair in expected:
        i, j = tuple(pair)
        assert component_of[i] == component_of[j]


def test_overlapping_pairs_of_strings():
    assert _cidr.overlapping_pairs(["10.0.0.0/8", "192.168.0.0/16", "10.1.0.0/16"]) == [("10.0.0.0/8", "10.1.0.0/16")]
