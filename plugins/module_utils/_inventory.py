# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory contract's defaults, defined once for every reader of a cluster host's variables.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only. ``host_variables`` is the one reader of the inventory's host variables;
``_topology`` builds the model from what it returns, and every planner takes that model, so a
cluster's name and technique cannot disagree between two stages of a run.
"""

from __future__ import annotations

import typing as t

# cluster_cni when the inventory leaves it out.
DEFAULT_CNI = "cilium"
_MISSING = object()


def host_variables(hostvars: t.Any, names: t.Iterable[str], variables: t.Iterable[str],
                   unreadable: t.Optional[t.Callable[[Exception], t.Any]] = None) -> t.Dict[str, t.Dict[str, t.Any]]:
    """``{host: {variable: value}}`` for the hosts in ``names``, in that order; undefined variables are left out.

    ``hostvars`` is Ansible's (values are templated on access) or any mapping of mappings. A value whose
    template fails raises, unless ``unreadable`` is given: then what it returns for the error stands in.
    """
    wanted = tuple(variables)
    result = {}
    for name in names or []:
        host = hostvars[name]
        values = {}
        for var in wanted:
            try:
                value = host.get(var, _MISSING) if hasattr(host, "get") else _MISSING
            except Exception as err:  # pylint: disable=broad-exception-caught  # Ansible raises its own kinds
                if unreadable is None:
                    raise
                value = unreadable(err)
            if value is not _MISSING:
                values[var] = value
        result[name] = values
    return result


def cluster_name(inventory_name: str, host_vars: t.Any) -> str:
    """A cluster's name: ``cluster_name``, else its inventory host name."""
    name = host_vars.get("cluster_name") if hasattr(host_vars, "get") else None
    return str(name or inventory_name)


def cluster_cni(host_vars: t.Any) -> t.Any:
    """A cluster's technique inside its group: ``cluster_cni``, else Cilium (raw, for validation to judge)."""
    if not hasattr(host_vars, "get"):
        return DEFAULT_CNI
    value = host_vars.get("cluster_cni", DEFAULT_CNI)
    return DEFAULT_CNI if value is None else value


def as_list(value: t.Any) -> t.List[t.Any]:
    """A list variable of the contract (``cluster_pod_cidrs``, ``interconnect_groups`` ...) as a list.

    A single value given as a string is a common slip; it is taken as a one-item list rather
    than iterated character by character.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
