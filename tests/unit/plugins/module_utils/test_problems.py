"""Every refusal of the collection has one shape and reads the same, whoever refuses."""

from __future__ import annotations

from ansible_collections.multicloud.interconnect.plugins.module_utils import _cilium, _istio, _kosmos, _topology
from ansible_collections.multicloud.interconnect.plugins.module_utils import _problems as p


def test_render_gives_code_who_message_then_field_and_fix():
    item = p.problem("CODE_X", "what is wrong.", "what to do", ["b", "a", "b"], "net-a", "some_field")
    assert item.clusters == ("a", "b")
    assert p.render([item]) == ["ERROR   CODE_X [group net-a: a, b] what is wrong.",
                                "        field: some_field; fix: what to do"]
    note = p.problem("NOTE_X", "for information.", "", ["a"], severity=p.INFO)
    assert p.render([note]) == ["INFO    NOTE_X [a] for information."]


def test_refusal_counts_errors_and_says_nothing_changed():
    items = [p.problem("A", "one.", "fix a", ["c1"]), p.problem("B", "two.", "fix b", ["c2"])]
    text = p.refusal("Something", items)
    assert text.splitlines()[0] == "Something refused (2 problems); nothing was changed."
    assert "ERROR   B [c2] two." in text


def test_dicts_round_trip():
    item = p.problem("A", "one.", "fix", ["c1"], "g", "f", p.WARNING)
    assert p.from_dict(item.as_dict()) == item


def test_every_refuser_uses_the_shared_type():
    assert _topology.Problem is p.Problem
    assert _istio.Problem is p.Problem
    refused = _istio.InterconnectError([p.problem("GATEWAY_MISSING", "no gateway.", "add one", ["c1"])])
    assert str(refused).startswith("Interconnect refused (1 problem); nothing was changed.\nERROR   GATEWAY_MISSING [c1]")
    kosmos = _kosmos.failure_message([{"code": "K", "field": "f", "clusters": ["c1"], "group": None,
                                       "message": "m.", "fix": "x"}])
    assert kosmos.splitlines()[1:] == ["ERROR   K [c1] m.", "        field: f; fix: x"]
    member = {"inventory_name": "c1", "name": "c1", "group": "net-a", "service_type": "NodePort", "node_port": 32001}
    cilium = _cilium.mesh_problems([member], {"net-a": ["c1", "c2"]})
    assert isinstance(cilium[0], p.Problem) and cilium[0].code == "CILIUM_GROUP_MEMBER_LEFT_OUT"
