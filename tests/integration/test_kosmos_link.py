"""playbooks/kosmos_link.yml on the lab: join net-b in P2P, switch to Gateway, add and remove a member.

After each step the clusters.kosmos.io objects on the host are read back with the Python client
and compared with the inventory exactly. The lab's Kosmos controllers are simulated Pods, so
clusternodes/nodeconfigs never appear; the role's own objects are what is verified here.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import pathlib
import re
import warnings

import pytest
from site_helpers import REPO, recap, run_playbook  # pylint: disable=import-error

INVENTORIES = REPO / "tests" / "integration" / "inventories"
CRDS = ("clusters.kosmos.io", "clusternodes.kosmos.io", "nodeconfigs.kosmos.io")
MANAGED = "app.kubernetes.io/managed-by=multicloud.interconnect"

pytestmark = pytest.mark.lab


STANDIN = REPO / "tools" / "lab" / "standin" / "kosmos"


def manifest_source():
    """The CRDs the lab exports from the pinned Kosmos module, or KOSMOS_MANIFEST_SOURCE.

    When neither holds them (the module proxy reachable here refuses the Kosmos module), the
    lab's stand-in CRDs are used and a warning says so in the test summary: their field schema is
    written from Kosmos v0.5.5's API types, not exported from the module.
    """
    given = os.environ.get("KOSMOS_MANIFEST_SOURCE")
    candidates = [given] if given else sorted(
        glob.glob(os.path.expanduser("~/.cache/multicloud-interconnect/lab/*/charts/kosmos")))
    for directory in candidates:
        text = "".join(pathlib.Path(p).read_text(encoding="utf-8") for p in glob.glob(directory + "/*.yaml"))
        if all(re.search(r"name: %s\s" % re.escape(crd), text) for crd in CRDS):
            return directory
    if given:
        pytest.fail("KOSMOS_MANIFEST_SOURCE=%s holds no CRDs %s" % (given, ", ".join(CRDS)))
    warnings.warn("Kosmos upstream CRDs are not available on this machine (the lab could not export them from "
                  "the Kosmos Go module); using the lab's stand-in CRDs %s" % STANDIN)
    return str(STANDIN)


def playbook(inventory, *extra, name="kosmos_link.yml"):
    """The run of playbooks/``name`` on one of this suite's inventories, not asserted (assert_ok judges it)."""
    return run_playbook("playbooks/" + name, *extra, inventories=(INVENTORIES / inventory,),
                        env={"KOSMOS_MANIFEST_SOURCE": manifest_source()}, timeout=900, expect=None)


def flat(text):
    """Output with the callback's line wrapping undone."""
    return " ".join(text.replace("'", " ").split())


def assert_ok(run, changed=None):
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    counts = recap(run.stdout)
    if changed is not None:
        assert {h: c["changed"] for h, c in counts.items()} == {h: changed for h in counts}, run.stdout[-6000:]
    return counts


class Api:
    def __init__(self, lab):
        from kubernetes import client
        self.client = client
        self.lab = lab

    def custom(self, name):
        return self.client.CustomObjectsApi(self.lab.clusters[name].api_client())

    def core(self, name):
        return self.client.CoreV1Api(self.lab.clusters[name].api_client())

    def rbac(self, name):
        return self.client.RbacAuthorizationV1Api(self.lab.clusters[name].api_client())

    def kosmos_clusters(self, host="cluster03"):
        items = self.custom(host).list_cluster_custom_object("kosmos.io", "v1alpha1", "clusters")["items"]
        return {c["metadata"]["name"]: c for c in items}

    def namespace(self, name, namespace="kosmos-system"):
        from kubernetes.client.rest import ApiException
        try:
            found = self.core(name).read_namespace(namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return None if found.metadata.deletion_timestamp else found

    def member_side(self, name):
        secrets = {s.metadata.name: s for s in self.core(name).list_namespaced_secret("kosmos-system").items}
        sas = {s.metadata.name for s in self.core(name).list_namespaced_service_account("kosmos-system").items}
        crb = self.rbac(name).read_cluster_role_binding("kosmos")
        return secrets, sas, crb

    def crds(self, name="cluster03"):
        ext = self.client.ApiextensionsV1Api(self.lab.clusters[name].api_client())
        return {c.metadata.name for c in ext.list_custom_resource_definition().items} & set(CRDS)


@pytest.fixture(scope="module")
def api(lab):
    return Api(lab)


def expect_clusters(api, lab, expected, host="cluster03"):
    """The host holds exactly ``expected`` ({name: (networkType, globalCIDRsMap)}) with working kubeconfigs."""
    from kubernetes import client, config
    observed = api.kosmos_clusters(host)
    assert set(observed) == set(expected)
    for name, (network_type, global_map) in expected.items():
        spec = observed[name]["spec"]
        options = spec["clusterLinkOptions"]
        assert options["enable"] is True
        assert options["networkType"] == network_type
        assert options["ipFamily"] == "ipv4"
        assert options["cni"] == "calico"
        assert options["defaultNICName"] == "*"
        assert options["bridgeCIDRs"]["ip"] == "220.0.0.0/8" and options["localCIDRs"]["ip"] == "210.0.0.0/8"
        assert options.get("globalCIDRsMap", {}) == global_map
        assert spec["namespace"] == "kosmos-system"
        labels = observed[name]["metadata"]["labels"]
        assert labels["interconnect.multicloud.io/kosmos-host"] == host
        annotations = observed[name]["metadata"].get("annotations") or {}
        assert (annotations.get("kosmos.io/cluster-role") == "root") == (name == host)
        # spec.kubeconfig is the member's kosmos-control token, and it really opens the member's API.
        kubeconfig = json.loads(base64.b64decode(spec["kubeconfig"]))
        assert kubeconfig["users"][0]["user"]["token"]
        assert "client-key-data" not in json.dumps(kubeconfig)
        member_api = config.new_client_from_config_dict(kubeconfig)
        nodes = client.CoreV1Api(member_api).list_node().items
        assert {n.metadata.name for n in nodes} == {n["name"] for n in lab.clusters[name].nodes}
        secrets, sas, crb = api.member_side(name)
        assert {"kosmos-control", "clusterlink-operator"} <= sas
        assert {s.name for s in crb.subjects} >= {"kosmos-control", "clusterlink-operator"}
        host_config = json.loads(base64.b64decode(secrets["controlpanel-config"].data["kubeconfig"]))
        assert host_config["clusters"][0]["name"] == host


@pytest.fixture(scope="module")
def joined_p2p(api):
    if api.crds():  # left over from an earlier run: start from nothing, as a first install does
        assert_ok(playbook("kosmos-remove", "-e", "kosmos_state=absent"))
    return [playbook("kosmos-p2p", "--check", "--diff"), playbook("kosmos-p2p", "--diff"),
            playbook("kosmos-p2p", "--check"), playbook("kosmos-p2p")]


def test_p2p_check_apply_check_apply(joined_p2p, api, lab):
    first_check, apply, check, again = joined_p2p
    assert_ok(first_check)
    assert_ok(apply)
    assert_ok(check, changed=0)
    assert_ok(again, changed=0)
    expect_clusters(api, lab, {"cluster03": ("p2p", {}), "cluster04": ("p2p", {})})
    assert "cluster03 (host) p2p ipv4" in flat(again.stdout)
    assert "not observed (controller-created; needs real clusters)" in flat(again.stdout)
    assert api.namespace("cluster04") is not None
    assert api.crds() == set(CRDS)


def test_p2p_diff_masks_kubeconfigs(joined_p2p, api):
    first_check, apply = joined_p2p[:2]
    # check mode on a fresh lab plans the creation of every object without creating any
    assert "Cluster cluster04 (create)" in first_check.stdout and "Namespace kosmos-system (create)" in first_check.stdout
    # the applied diff shows the secrets and kubeconfigs as digests only
    assert "controlpanel-config (create)" in apply.stdout and "sha256:" in apply.stdout
    token = api.core("cluster04").read_namespaced_secret("kosmos-control-token", "kosmos-system").data["token"]
    for run in joined_p2p:
        assert token not in run.stdout and base64.b64decode(token).decode() not in run.stdout
        assert "certificate-authority-data" not in run.stdout


def test_switch_to_gateway(joined_p2p, api, lab):
    check = playbook("kosmos-p2p", "-e", "kosmos_network_type=gateway", "--check", "--diff")
    assert_ok(check)
    assert "+ networkType: gateway" in flat(check.stdout) and "- networkType: p2p" in flat(check.stdout)
    # check mode changed nothing
    assert {n: c["spec"]["clusterLinkOptions"]["networkType"] for n, c in api.kosmos_clusters().items()} == {
        "cluster03": "p2p", "cluster04": "p2p"}
    assert_ok(playbook("kosmos-p2p", "-e", "kosmos_network_type=gateway"))
    assert_ok(playbook("kosmos-p2p", "-e", "kosmos_network_type=gateway"), changed=0)
    expect_clusters(api, lab, {"cluster03": ("gateway", {}), "cluster04": ("gateway", {})})


def test_lab_api_server_rejects_a_misspelled_or_wrong_kosmos_field(joined_p2p, api):
    """The CRDs carry Kosmos v0.5.5's field schema: what a role writes wrong fails at the API server."""
    from kubernetes.client.rest import ApiException
    custom = api.custom("cluster03")
    body = {"apiVersion": "kosmos.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "schema-probe"},
            "spec": {"kubeconfig": base64.b64encode(b"{}").decode(),
                     "clusterLinkOptions": {"enable": True, "networkTyp": "p2p"}}}
    try:
        with pytest.raises(ApiException) as err:
            # Strict is what kubectl and server-side apply ask for; without it the field is pruned.
            custom.create_cluster_custom_object("kosmos.io", "v1alpha1", "clusters", body, field_validation="Strict")
        assert err.value.status == 400, err.value.body
        assert 'unknown field "spec.clusterLinkOptions.networkTyp"' in json.loads(err.value.body)["message"]
        body["spec"]["clusterLinkOptions"] = {"enable": True, "networkType": "vxlan"}
        with pytest.raises(ApiException) as err:
            custom.create_cluster_custom_object("kosmos.io", "v1alpha1", "clusters", body)
        assert err.value.status == 422
        assert 'networkType: Unsupported value: "vxlan"' in json.loads(err.value.body)["message"]
    finally:
        if "schema-probe" in api.kosmos_clusters():  # a schema that let it in must not leave it behind
            custom.delete_cluster_custom_object("kosmos.io", "v1alpha1", "clusters", "schema-probe")


def test_overlapping_cidrs_without_global_map_are_refused_before_any_change(api):
    before = {n: c["metadata"]["resourceVersion"] for n, c in api.kosmos_clusters().items()}
    run = playbook("kosmos-overlap")
    assert run.returncode != 0
    assert "CIDR_OVERLAP_IN_GROUP" in run.stdout and "cluster_global_cidrs" in flat(run.stdout)
    assert "nothing was changed" in flat(run.stdout)
    assert "multicloud.interconnect.kosmos" not in run.stdout  # the role never started
    assert {n: c["metadata"]["resourceVersion"] for n, c in api.kosmos_clusters().items()} == before
    assert api.namespace("cluster02") is None


def test_add_then_remove_a_member(api, lab):
    assert_ok(playbook("kosmos-add"))
    assert_ok(playbook("kosmos-add", "--check"), changed=0)
    expect_clusters(api, lab, {"cluster03": ("gateway", {}), "cluster04": ("gateway", {}),
                               "cluster02": ("gateway", {"10.245.0.0/16": "10.145.0.0/16",
                                                         "10.97.0.0/16": "10.197.0.0/16"})})
    assert api.namespace("cluster02") is not None

    removed = playbook("kosmos-remove")
    assert_ok(removed)
    assert_ok(playbook("kosmos-remove", "--check"), changed=0)
    expect_clusters(api, lab, {"cluster03": ("gateway", {}), "cluster04": ("gateway", {})})
    # the member side of cluster02 is gone too; Cilium's and Istio's objects there are not ours to touch
    assert api.namespace("cluster02") is None
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as err:
        api.rbac("cluster02").read_cluster_role_binding("kosmos")
    assert err.value.status == 404


def test_diagnosis_reports_control_plane_and_defers_data_plane(api, tmp_path):
    run = playbook("kosmos-remove", "-e", "kosmos_diagnose_report_dir=%s" % tmp_path, name="kosmos_diagnose.yml")
    counts = assert_ok(run)
    # only the report files on the controller change; no cluster object does
    assert all(c["changed"] == 0 for h, c in counts.items() if h != "cluster03") and counts["cluster03"]["changed"] <= 3
    report = json.loads((tmp_path / "net-b.json").read_text(encoding="utf-8"))
    assert report["host"] == "cluster03" and report["network_type"] == "gateway"
    assert report["control_plane"]["cluster03"]["cluster04"] == "ok"
    assert report["control_plane"]["cluster04"]["cluster03"] == "ok"
    # 3 nodes each way, host and Pod network: the Pod half has no probe Pod IPs to aim at
    assert report["data_plane"]["cluster03"]["cluster04"].startswith("not run (")
    assert "needs real clusters" in report["data_plane"]["cluster04"]["cluster03"]
    assert report["readback"]["clusters"]["cluster04"]["cluster_nodes"].startswith("not observed")
    text = (tmp_path / "net-b.txt").read_text(encoding="utf-8")
    assert "Control plane" in text and "Data plane" in text
    token = api.core("cluster04").read_namespaced_secret("kosmos-control-token", "kosmos-system").data["token"]
    for written in (tmp_path / "net-b.json", tmp_path / "net-b.txt"):
        assert base64.b64decode(token).decode() not in written.read_text(encoding="utf-8")


def test_uninstall_leaves_nothing(api):
    run = playbook("kosmos-remove", "-e", "kosmos_state=absent")
    assert_ok(run)
    assert_ok(playbook("kosmos-remove", "-e", "kosmos_state=absent"), changed=0)
    assert api.crds() == set()
    for name in ("cluster03", "cluster04"):
        assert api.namespace(name) is None
        kosmos_bindings = {b.metadata.name for b in api.rbac(name).list_cluster_role_binding(label_selector=MANAGED).items}
        assert not kosmos_bindings & {"kosmos", "clusterlink-network-manager"}
