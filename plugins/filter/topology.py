# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the same pure CIDR and topology functions the modules use."""

from __future__ import annotations

import functools
import pathlib

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils._cidr import (
    CidrError,
    canonical_cidr,
    cidrs_overlap,
    is_valid_cidr,
    overlapping_pairs,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._data import copied
from ansible_collections.multicloud.interconnect.plugins.module_utils._inventory import cluster_cni, cluster_name, host_variables
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import refusal
from ansible_collections.multicloud.interconnect.plugins.module_utils._role_arguments import argument_problems
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import INVENTORY_VARS


def cluster_inventory(hostvars, names):
    """``{host: {contract variable: value}}`` for the hosts in ``names``; undefined variables are left out."""
    return host_variables(hostvars, names, INVENTORY_VARS)


def inventory_cluster_name(inventory_name, hostvars):
    """The cluster name of inventory host ``inventory_name``: ``cluster_name``, else the host name."""
    return cluster_name(inventory_name, hostvars[inventory_name])


def inventory_cluster_cni(inventory_name, hostvars):
    """The technique of inventory host ``inventory_name`` inside its group: ``cluster_cni``, else Cilium."""
    return cluster_cni(hostvars[inventory_name])


# The collection's roles, beside plugins/ in the collection (and in a checkout).
ROLES_DIR = pathlib.Path(__file__).resolve().parents[2] / "roles"


@functools.lru_cache(maxsize=None)
def _role_options(role):
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    try:
        with open(path, encoding="utf-8") as handle:
            # libyaml when PyYAML has it: the five roles' specs take 0.25 s with the pure-Python loader.
            specs = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except OSError as err:
        raise AnsibleFilterError("role_argument_refusal: no argument specs for role %s (%s)" % (role, err)) from err
    return (specs.get("argument_specs") or {}).get("main", {}).get("options") or {}


def role_argument_refusal(hostvars, names, roles):
    """The refusal of validate.yml for role variables the clusters ``names`` set against the ``main`` argument
    specs of ``roles``, or an empty string. The playbooks import those roles with ``rolespec_validate: false``."""
    specs = {role: _role_options(role) for role in roles or []}
    wanted = sorted({name for options in specs.values() for name in options})
    # copied: the validator deep-copies what it checks, and a deep copy of Ansible's lazy container copies the
    # whole variable context it renders from (an unreadable value's ValueError passes through as it is).
    values = copied(host_variables(
        hostvars, names, wanted,
        unreadable=lambda err: ValueError(str(err).splitlines()[0] if str(err) else type(err).__name__)))
    problems = argument_problems(specs, values)
    return refusal("Role variables", problems) if problems else ""


def _wrap(function):
    def call(*args):
        try:
            return function(*args)
        except (CidrError, ValueError) as err:
            raise AnsibleFilterError("%s: %s" % (function.__name__, err)) from err
    call.__name__ = function.__name__
    call.__doc__ = function.__doc__
    return call


def cidr_overlapping_pairs(cidrs):
    return [list(pair) for pair in overlapping_pairs(cidrs)]


class FilterModule:
    def filters(self):
        return {
            "cluster_inventory": cluster_inventory,
            "cluster_name": inventory_cluster_name,
            "cluster_cni": inventory_cluster_cni,
            "role_argument_refusal": role_argument_refusal,
            "cidr_valid": is_valid_cidr,
            "cidr_canonical": _wrap(canonical_cidr),
            "cidr_overlaps": _wrap(cidrs_overlap),
            "cidr_overlapping_pairs": _wrap(cidr_overlapping_pairs),
        }
