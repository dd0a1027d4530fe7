# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' argument specs, checked for every cluster at once before any stage runs.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Ansible checks a role's arguments when the role starts, on each host. In site.yml that is after
the stages before it changed the clusters: a wrong Istio variable would stop the run with Cilium
already upgraded. validate.yml checks the value every cluster gives each role variable against the
role's ``meta/argument_specs.yml`` (the same validator Ansible uses), and the playbooks import the
roles with ``rolespec_validate: false``. Values the inventory leaves to a role's defaults are not
checked here: the defaults are checked against the specs by the unit tests, and the defaults built
from the topology (the network group, the gateway) by validate_topology.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem

COLLECTION = "multicloud.interconnect"


def _secret(name: str, option: t.Mapping[str, t.Any]) -> bool:
    return bool(option.get("no_log")) or name.endswith("_key")


def option_errors(name: str, option: t.Mapping[str, t.Any], value: t.Any) -> t.List[str]:
    """What Ansible's role validation says of ``value`` for option ``name``; no value of a secret is echoed."""
    result = ArgumentSpecValidator({name: dict(option)}).validate({name: value})
    if result.error_messages and _secret(name, option):
        return ["%s is not a valid %s (the value is not shown: it is a secret)" % (name, option.get("type", "str"))]
    return list(result.error_messages)


def argument_problems(specs: t.Mapping[str, t.Mapping[str, t.Any]],
                      values: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.List[Problem]:
    """One problem per role, option and error, naming every cluster that gives the option that value.

    ``specs``: ``{role: {option: spec}}`` (the ``options`` of an entry point of ``meta/argument_specs.yml``).
    ``values``: ``{cluster: {variable: value}}`` of the variables the inventory (or extra vars) sets; a value
    that could not be read is a ``ValueError`` in its place.
    """
    found: t.Dict[t.Tuple[str, str, str], t.List[str]] = {}
    for cluster, given in values.items():
        for role, options in specs.items():
            for name, option in options.items():
                if name not in given:
                    continue
                value = given[name]
                if isinstance(value, ValueError):
                    errors = ["%s cannot be evaluated%s" % (
                        name, " (the error is not shown: it is a secret)" if _secret(name, option) else ": %s" % value)]
                else:
                    errors = option_errors(name, option, value)
                for error in errors:
                    found.setdefault((role, name, error), []).append(cluster)
    problems = []
    for (role, name, error), clusters in sorted(found.items()):
        option = specs[role][name]
        allowed = "one of %s" % ", ".join(str(c) for c in option["choices"]) if option.get("choices") else \
            "a value of type %s" % option.get("type", "str")
        problems.append(problem(
            "ROLE_ARGUMENT_INVALID",
            "%s (role %s.%s)." % (error.rstrip("."), COLLECTION, role),
            "give %s %s, or leave it out for the role's default (ansible-doc -t role %s.%s)"
            % (name, allowed, COLLECTION, role),
            clusters, None, name))
    return problems
