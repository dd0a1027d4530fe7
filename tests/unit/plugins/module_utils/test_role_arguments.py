"""Role variables are checked against the roles' argument specs for every cluster at once, in validate.yml."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.filter.topology import FilterModule
from ansible_collections.multicloud.interconnect.plugins.module_utils._role_arguments import (
    argument_problems,
    option_errors,
)

REPO = pathlib.Path(__file__).resolve().parents[4]
PLAYBOOKS = REPO / "playbooks"
FILTERS = FilterModule().filters()
SPEC = {
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "port": {"type": "int", "default": 6443},
    "signing_key": {"type": "str", "choices": ["", "k1"], "default": ""},
}


def _main_options(role):
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return specs["argument_specs"]["main"]["options"]


def test_one_problem_per_option_and_error_naming_every_cluster_the_field_and_the_fix():
    problems = argument_problems({"demo": SPEC}, {
        "c1": {"state": "bogus", "port": "6443"},
        "c2": {"state": "bogus", "port": "abc"},
        "c3": {"state": "absent", "unrelated": 1},
    })
    assert [(p.code, p.field, p.clusters) for p in problems] == [
        ("ROLE_ARGUMENT_INVALID", "port", ("c2",)),
        ("ROLE_ARGUMENT_INVALID", "state", ("c1", "c2")),
    ]
    port, state = problems
    assert "abc" in port.message and "multicloud.interconnect.demo" in port.message
    assert "give port a value of type int" in port.fix and "ansible-doc -t role multicloud.interconnect.demo" in port.fix
    assert "got: bogus" in state.message and "give state one of present, absent" in state.fix


def test_a_secret_is_never_echoed_and_an_unreadable_value_is_named():
    assert option_errors("signing_key", SPEC["signing_key"], "PRIVATE-MATERIAL") == [
        "signing_key is not a valid str (the value is not shown: it is a secret)"]
    problems = argument_problems({"demo": SPEC}, {"c1": {"port": ValueError("'nope' is undefined")}})
    assert problems[0].message.startswith("port cannot be evaluated: 'nope' is undefined")


def test_valid_values_and_values_left_to_the_defaults_pass():
    assert not argument_problems({"demo": SPEC}, {"c1": {"state": "absent", "port": 30443}, "c2": {}})


@pytest.mark.parametrize("role", ["apiserver_nodeport", "cilium", "kosmos", "istio", "eastwest_gateway"])
def test_each_role_default_that_is_no_template_passes_its_own_spec(role):
    """validate.yml checks what the inventory sets; what it leaves to the defaults is checked here."""
    defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}
    options = _main_options(role)
    plain = {name: value for name, value in defaults.items() if "{{" not in str(value)}
    assert plain, role
    assert not argument_problems({role: options}, {"defaults": plain})


def test_the_filter_reads_the_roles_specs_and_refuses_before_any_change():
    hostvars = {"cluster01": {"istio_state": "bogus", "cluster_id": 1},
                "cluster02": {"istio_state": "present", "apiserver_nodeport_port": "abc"}}
    text = FILTERS["role_argument_refusal"](hostvars, ["cluster01", "cluster02"], ["apiserver_nodeport", "istio"])
    assert text.startswith("Role variables refused (2 problems); nothing was changed.")
    assert "[cluster01] value of istio_state must be one of: present, absent, got: bogus" in text
    assert "[cluster02] argument 'apiserver_nodeport_port'" in text
    assert FILTERS["role_argument_refusal"](hostvars, ["cluster02"], ["istio"]) == ""


def test_every_role_the_playbooks_import_without_their_check_is_checked_by_validate_yml():
    validate = (PLAYBOOKS / "validate.yml").read_text(encoding="utf-8")
    unchecked = set()
    for path in PLAYBOOKS.glob("*.yml"):
        for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for section in ("pre_tasks", "tasks", "post_tasks"):
                for task in play.get(section) or []:
                    spec = task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role")
                    if spec and spec.get("rolespec_validate") is False:
                        unchecked.add(spec["name"].rsplit(".", 1)[-1])
    assert unchecked == {"apiserver_nodeport", "cilium", "kosmos", "istio", "eastwest_gateway"}
    for role in unchecked:
        assert "'%s'" % role in validate, role


class _Host(dict):
    """hostvars of one host as Ansible gives them: a value whose template fails raises when it is read."""

    def get(self, key, default=None):
        if key in ("istio_namespace", "istio_ca_key"):
            raise RuntimeError("'ns_from_nowhere' is undefined\nmore lines of the template")
        return super().get(key, default)


def test_the_filter_names_a_value_that_cannot_be_evaluated_and_hides_a_secret_one():
    text = FILTERS["role_argument_refusal"]({"cluster01": _Host()}, ["cluster01"], ["istio"])
    assert "[cluster01] istio_namespace cannot be evaluated: 'ns_from_nowhere' is undefined (role" in text
    assert "[cluster01] istio_ca_key cannot be evaluated (the error is not shown: it is a secret)" in text
    assert "more lines" not in text
