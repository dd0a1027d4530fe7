"""Filters of the Istio roles and playbooks: chart values and the interconnect module's input."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter.istio import FilterModule

FILTERS = FilterModule().filters()


def test_interconnect_clusters_maps_inventory_and_apiserver_facts():
    hostvars = {
        "cluster01": {"cluster_network_group": "net-a", "cluster_eastwest_gateway": {"service_type": "NodePort"},
                      "apiserver_nodeport_url": "https://172.30.1.11:31234", "apiserver_tls_server_name": "kubernetes",
                      "apiserver_ca_data": "Q0E=", "cluster_kubeconfig": "/k/c1.yaml", "ansible_host": "x"},
        "host2": {"cluster_name": "cluster02", "cluster_network_group": "net-b", "cluster_context": "ctx2",
                  "apiserver_nodeport_url": ""},
        "other": {"cluster_network_group": "net-z"},
    }
    assert FILTERS["istio_interconnect_clusters"](hostvars, ["cluster01", "host2"]) == {
        "cluster01": {"network_group": "net-a", "eastwest_gateway": {"service_type": "NodePort"},
                      "api_url": "https://172.30.1.11:31234", "tls_server_name": "kubernetes", "ca_data": "Q0E=",
                      "kubeconfig": "/k/c1.yaml"},
        "cluster02": {"network_group": "net-b", "context": "ctx2"},
    }


def test_istiod_values_let_the_role_win():
    values = FILTERS["istio_istiod_values"](
        {"global": {"network": "wrong", "configValidation": False}, "pilot": {"env": {"A": "1"}}},
        "cluster01", "net-a", "mesh1")
    assert values["global"]["network"] == "net-a"
    assert values["global"]["configValidation"] is False
    assert values["global"]["multiCluster"] == {"clusterName": "cluster01"}
    assert values["global"]["meshID"] == "mesh1"
    # Without a plan the role keeps the running release's meshNetworks (helm_releases keep_values).
    assert values["global"]["meshNetworks"] == {}
    assert values["pilot"] == {"env": {"A": "1"}}


def test_istiod_values_take_the_planned_mesh_networks():
    planned = {"net-a": {"endpoints": [{"fromRegistry": "cluster01"}], "gateways": [{"address": "5.6.7.8", "port": 31443}]}}
    values = FILTERS["istio_istiod_values"]({}, "cluster01", "net-a", "mesh1", planned)
    assert values["global"]["meshNetworks"] == planned
    # An empty plan (the cluster left the interconnect) empties them; it is not "keep".
    assert FILTERS["istio_istiod_values"]({}, "cluster01", "net-a", "mesh1", {})["global"]["meshNetworks"] == {}
    with pytest.raises(AnsibleFilterError, match="istio_mesh_networks"):
        FILTERS["istio_istiod_values"]({}, "cluster01", "net-a", "mesh1", ["net-a"])


def test_gateway_values_follow_the_inventory():
    values = FILTERS["istio_gateway_values"](
        {"replicas": 2, "service_type": "LoadBalancer", "service_annotations": {"lb/internal": "true"}}, "net-a",
        {"service": {"type": "ClusterIP", "externalTrafficPolicy": "Local"}})
    assert values["networkGateway"] == "net-a"
    assert values["replicaCount"] == 2 and values["autoscaling"] == {"enabled": False}
    assert values["service"] == {"type": "LoadBalancer", "annotations": {"lb/internal": "true"},
                                 "externalTrafficPolicy": "Local"}
    assert values["labels"] == {"topology.istio.io/network": "net-a"}
    with pytest.raises(AnsibleFilterError, match="mapping"):
        FILTERS["istio_gateway_values"]("yes", "net-a")


@pytest.mark.parametrize("spec, expected", [
    ({"service_type": "NodePort", "node_port": 31443}, 31443),
    ({"service_type": "NodePort"}, None),
    ({"service_type": "LoadBalancer", "node_port": 31443}, None),
])
def test_node_port_patch(spec, expected):
    patch = FILTERS["istio_gateway_node_port_patch"](spec, "istio-eastwestgateway", "istio-system")
    if expected is None:
        assert patch is None
    else:
        assert patch["spec"]["ports"] == [{"port": 15443, "nodePort": expected}]


def test_gateway_rule_is_the_documented_rule():
    rule = FILTERS["istio_gateway_rule"]("cross-network-gateway", "istio-system", ["*.local"], "istio-eastwestgateway")
    assert rule["spec"]["selector"] == {"istio": "eastwestgateway"}
    assert rule["spec"]["servers"] == [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                                        "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]


def test_cacerts_data_chains_the_intermediate_to_the_root():
    data = FILTERS["istio_cacerts_data"]("-----BEGIN CERTIFICATE-----\nI\n-----END CERTIFICATE-----",
                                         "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----",
                                         "-----BEGIN CERTIFICATE-----\nR\n-----END CERTIFICATE-----")
    chain = base64.b64decode(data["cert-chain.pem"]).decode()
    assert chain.index("\nI\n") < chain.index("\nR\n")
    assert sorted(data) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    with pytest.raises(AnsibleFilterError, match="ca_key"):
        FILTERS["istio_cacerts_data"]("-----BEGIN X", "", "-----BEGIN Y")


def test_disable_refusal_filter():
    assert FILTERS["istio_disable_refusal"]([], "disable interconnect", "disable interconnect") == ""
    text = FILTERS["istio_disable_refusal"](["net-b"], "", "disable interconnect")
    assert text.startswith("Disabling the interconnect refused (2 problems); nothing was changed.\n")
    assert "INTERCONNECT_STILL_JOINED [-] groups still on the interconnect list: net-b" in text
    assert "field: interconnect_groups; fix: run playbooks/interconnect_remove.yml with " \
           "interconnect_groups=[\"net-b\"] first" in text
    assert "field: interconnect_disable_confirm; fix: confirm with -e interconnect_disable_confirm='disable " \
           "interconnect'" in text


def test_istiod_restarts_when_the_cas_it_loads_change():
    """The digest on istiod's Pods follows what istiod loads from cacerts (its intermediate and the roots it
    trusts, whatever the PEM layout), so Helm restarts it exactly when they change."""
    from ..module_utils.test_istio_ca_rotation import make_mesh, pem  # pylint: disable=import-outside-toplevel

    mesh = make_mesh()
    ints = mesh["ints"]["cluster01"]
    data = FILTERS["istio_cacerts_data"](pem(ints["old"]), pem(ints["old"], "key"), pem(mesh["old"]))
    digest = FILTERS["istio_cacerts_digest"](data)
    rewrapped = FILTERS["istio_cacerts_data"](pem(ints["old"]).replace("\n", "\r\n"), pem(ints["old"], "key"),
                                              pem(mesh["old"]) + "\n")
    assert FILTERS["istio_cacerts_digest"](rewrapped) == digest
    both = FILTERS["istio_cacerts_data"](pem(ints["old"]), pem(ints["old"], "key"), pem(mesh["old"]),
                                         pem(mesh["old"]) + pem(mesh["new"]))
    new_int = FILTERS["istio_cacerts_data"](pem(ints["new"]), pem(ints["new"], "key"), pem(mesh["new"]))
    assert len({digest, FILTERS["istio_cacerts_digest"](both), FILTERS["istio_cacerts_digest"](new_int)}) == 3
    values = FILTERS["istio_istiod_values"]({"podAnnotations": {"team": "mesh"}}, "cluster01", "net-a", "mesh1", None,
                                            digest)
    assert values["podAnnotations"] == {"team": "mesh", "ca.multicloud.interconnect/cacerts": digest}
    # Without a digest (a stage that does not write cacerts) the role keeps the running release's annotations.
    assert "ca.multicloud.interconnect/cacerts" not in FILTERS["istio_istiod_values"]({}, "c", "n", "m").get("podAnnotations", {})


def read_of(cacerts):
    """The istio role's register of its cacerts read (cluster_objects), as hostvars hold it."""
    return {"__istio_ca_read": {"changed": False, "read": [[{"data": cacerts}] if cacerts is not None else []]}}


def test_site_writes_cacerts_only_where_no_other_root_runs():
    """site.yml's CA check before any CA file is made or cacerts written: a cluster running another root (or
    trusting more than the mesh's) is named with the field and the fix; a CA of the user's must sign CAs."""
    from ..module_utils.test_istio_ca_rotation import chain, make_ca, make_mesh, pem, stage_data, start_data  # pylint: disable=import-outside-toplevel

    refusal = FILTERS["istio_ca_install_refusal"]
    mesh = make_mesh("made", "given")
    running = {name: read_of(start_data(mesh, name)) for name in ("cluster01", "cluster02")}
    hosts = sorted(running)
    assert refusal(running, hosts, chain(mesh["old"]), "", False, "/ca") == ""
    fresh = {name: read_of(None) for name in hosts}
    assert refusal(fresh, hosts, chain(mesh["new"]), pem(mesh["new"], "key"), True, "/ca") == ""
    # A CA of the user's while the mesh runs the role's root: moving it is the rotation's work.
    given = refusal(running, hosts, chain(mesh["new"]), pem(mesh["new"], "key"), True, "/ca")
    assert "ISTIO_CA_DIFFERS [cluster01, cluster02]" in given and "field: istio_ca_cert" in given
    assert "playbooks/ca_rotate.yml" in given and "nothing was changed" in given
    # The controller lost its root: this run would make a new one.
    lost = refusal(running, hosts, "", "", False, "/ca")
    assert "ISTIO_CA_DIFFERS [cluster01, cluster02]" in lost and "/ca holds no root" in lost
    assert "field: istio_ca_dir" in lost and "restore istio_ca_dir" in lost
    # One cluster trusts two roots (a rotation's trust stage whose marker is gone): only it is named.
    mixed = dict(running, cluster02=read_of(stage_data(mesh, "cluster02", "trust")))
    assert "ISTIO_CA_DIFFERS [cluster02]" in refusal(mixed, hosts, chain(mesh["old"]), "", False, "/ca")
    # A host whose read was skipped (a rotation under way) is left out.
    skipped = dict(running, cluster02={"__istio_ca_read": {"skipped": True}})
    assert refusal(skipped, hosts, chain(mesh["old"]), "", False, "/ca") == ""
    # A CA of the user's that is not a CA chain to a root: refused before anything else.
    leaf = make_ca("Not a CA", make_ca("Corporate Root"), ca=False)
    invalid = refusal(fresh, hosts, chain(leaf), pem(leaf, "key"), True, "/ca")
    assert "ISTIO_CA_CERT_INVALID" in invalid and "is not a CA" in invalid and "field: istio_ca_cert" in invalid


def test_cacerts_data_with_a_given_chain_ends_in_its_root():
    from ..module_utils.test_istio_ca_rotation import anchor, chain, make_mesh, pem  # pylint: disable=import-outside-toplevel
    from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints  # pylint: disable=import-outside-toplevel

    mesh = make_mesh("given", "made")
    ints = mesh["ints"]["cluster01"]
    data = FILTERS["istio_cacerts_data"](pem(ints["old"]), pem(ints["old"], "key"), chain(mesh["old"]))
    # cert-chain.pem: the intermediate, the user's CA, its root; root-cert.pem: that root alone.
    assert len(bundle_fingerprints(data["cert-chain.pem"])) == 3
    assert bundle_fingerprints(data["root-cert.pem"]) == [anchor(mesh["old"])]


def test_validation_checks_a_ca_of_your_own_as_the_inventory_gives_it():
    from ..module_utils.test_istio_ca_rotation import chain, make_ca, make_signer  # pylint: disable=import-outside-toplevel

    check = FILTERS["istio_given_ca_refusal"]
    signer = make_signer("given", "mesh1")
    hv = {name: {"istio_ca_cert": signer["cert"], "istio_ca_key": signer["key"]} for name in ("cluster01", "cluster02")}
    assert check(hv, sorted(hv)) == "" and check({"cluster01": {}}, ["cluster01"]) == ""
    # PEM text where base64 of it is expected: the field and how to encode it.
    raw = dict(hv, cluster02={"istio_ca_cert": chain(signer), "istio_ca_key": signer["key"]})
    text = check(raw, sorted(raw))
    assert "ISTIO_CA_CERT_INVALID [cluster02]" in text and "b64encode" in text
    other = make_ca("Other")
    wrong = dict(hv, cluster01={"istio_ca_cert": signer["cert"], "istio_ca_key": other["key"]})
    assert "ISTIO_CA_CERT_INVALID [cluster01] istio_ca_cert cannot sign" in check(wrong, sorted(wrong))
    assert "ISTIO_CA_KEY [cluster01, cluster02]" in check({n: {"istio_ca_cert": signer["cert"]} for n in hv}, sorted(hv))
