"""playbooks/apiserver_expose.yml on the lab, as a user runs it, then the result read back from the API."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import sys
import textwrap
import time

import pytest
import urllib3
import yaml
from site_helpers import REPO, changed, run_playbook  # pylint: disable=import-error

SERVICE = "kube-apiserver-nodeport"
READER = "multicloud-interconnect-reader"

pytestmark = pytest.mark.lab


def expose(kubeconfig, *extra, inventory="inventories/lab"):
    """Output of apiserver_expose.yml writing the merged kubeconfig to ``kubeconfig``; it must succeed."""
    return run_playbook("playbooks/apiserver_expose.yml", "-e", "apiserver_kubeconfig_path=%s" % kubeconfig, *extra,
                        inventories=(inventory,), timeout=600).output


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module", name="converged")
def fixture_converged(lab, tmp_path_factory):
    """check -> apply -> check -> apply (-vvv --diff), on one kubeconfig path; every output is kept."""
    kubeconfig = tmp_path_factory.mktemp("apiserver") / "out" / "kubeconfig"
    runs = [expose(kubeconfig, "--check", "--diff"), expose(kubeconfig), expose(kubeconfig, "--check", "--diff"),
            expose(kubeconfig, "-vvv", "--diff")]
    wait_for_node_ports(load(kubeconfig))
    return {"lab": lab, "kubeconfig": kubeconfig, "runs": runs}


def wait_for_node_ports(config, timeout=90):
    """Until every server of the merged kubeconfig accepts a connection: a new nodePort opens on the
    nodes a moment after the Service exists (kube-proxy's part; the lab's forwarder polls for it)."""
    pending = {urllib3.util.parse_url(c["cluster"]["server"]) for c in config["clusters"]}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for url in sorted(pending, key=str):
            try:
                socket.create_connection((url.host, url.port), timeout=2).close()
                pending.discard(url)
            except OSError:
                pass
        time.sleep(1)
    assert not pending, "node ports still closed after %ss: %s" % (timeout, sorted(map(str, pending)))


def test_second_check_and_apply_change_nothing(converged):
    for output in converged["runs"][2:]:
        changes = changed(output)
        assert set(converged["lab"].clusters) <= set(changes), output[-3000:]
        assert all(count == 0 for count in changes.values()), changes


def test_service_selects_the_api_server_on_a_node_port(converged):
    from kubernetes import client

    for cluster in converged["lab"].clusters.values():
        service = client.CoreV1Api(cluster.api_client()).read_namespaced_service(SERVICE, "kube-system")
        assert service.spec.type == "NodePort"
        assert service.spec.selector == {"component": "kube-apiserver", "tier": "control-plane"}
        (port,) = service.spec.ports
        assert (port.port, port.target_port, port.protocol) == (6443, 6443, "TCP")
        assert 0 < port.node_port


def test_kubeconfig_is_0600_and_points_every_cluster_at_a_worker_node_port(converged):
    path = converged["kubeconfig"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    config = load(path)
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    assert sorted(clusters) == sorted(converged["lab"].clusters)
    from kubernetes import client

    for name, lab_cluster in converged["lab"].clusters.items():
        node_port = client.CoreV1Api(lab_cluster.api_client()).read_namespaced_service(
            SERVICE, "kube-system").spec.ports[0].node_port
        assert clusters[name]["server"] == "https://%s:%d" % (sorted(lab_cluster.worker_ips)[0], node_port)
        assert clusters[name]["tls-server-name"] == "kubernetes"
        with open(lab_cluster.ca_file, "rb") as handle:
            assert base64.b64decode(clusters[name]["certificate-authority-data"]) == handle.read()
    assert sorted(c["name"] for c in config["contexts"]) == sorted(
        list(converged["lab"].clusters) + [n + "-reader" for n in converged["lab"].clusters])


def test_k8s_info_reaches_every_context_through_its_node_port_with_tls_verified(converged, tmp_path):
    playbook = tmp_path / "reach.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Read kube-system through each context of the merged kubeconfig
              kubernetes.core.k8s_info:
                kubeconfig: "{{ merged }}"
                context: "{{ item }}"
                validate_certs: true
                kind: Namespace
                name: kube-system
              loop: "{{ contexts }}"
              register: reached
            - name: Every context saw the namespace
              ansible.builtin.assert:
                that: reached.results | map(attribute='resources') | map('length') | min == 1
        """))
    contexts = [c["name"] for c in load(converged["kubeconfig"])["contexts"]]
    # A host list, not an inventory path: passed as it is rather than through ``inventories``.
    run = run_playbook(playbook, "-i", "localhost,", "-c", "local", "-e", "merged=%s" % converged["kubeconfig"],
                       "-e", '{"contexts": %s}' % yaml.safe_dump(contexts, default_flow_style=True).strip(),
                       "-e", "ansible_python_interpreter=%s" % sys.executable, inventories=(), timeout=600)
    assert "failed=0" in run.stdout


def _client(config, context):
    from kubernetes import client, config as k8s_config

    configuration = client.Configuration()
    k8s_config.kube_config.KubeConfigLoader(config_dict=config, active_context=context).load_and_set(configuration)
    return client.ApiClient(configuration)


def test_without_tls_server_name_the_worker_url_fails_verification(converged):
    from kubernetes import client

    config = load(converged["kubeconfig"])
    assert client.VersionApi(_client(config, "cluster01")).get_code(_request_timeout=10).git_version
    for entry in config["clusters"]:
        entry["cluster"].pop("tls-server-name")
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        client.VersionApi(_client(config, "cluster01")).get_code(_request_timeout=10)
    # The worker's IP is not in the API server's certificate: only tls-server-name makes it verify.
    assert isinstance(err.value.reason, urllib3.exceptions.SSLError), err.value
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and "mismatch" in str(err.value), err.value


def test_reader_context_reads_but_cannot_read_secrets(converged):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    config = load(converged["kubeconfig"])
    api = client.CoreV1Api(_client(config, "cluster02-reader"))
    assert api.list_namespaced_pod("kube-system").items is not None
    with pytest.raises(ApiException) as err:
        api.list_namespaced_secret("kube-system")
    assert err.value.status == 403


def test_no_token_or_key_in_any_output(converged):
    from kubernetes import client

    secrets = []
    for cluster in converged["lab"].clusters.values():
        token = client.CoreV1Api(cluster.api_client()).read_namespaced_secret(READER + "-token", "kube-system").data["token"]
        secrets += [token, base64.b64decode(token).decode()]
        user = load(cluster.kubeconfig)["users"][0]["user"]
        secrets += [user["client-key-data"], base64.b64decode(user["client-key-data"]).decode().splitlines()[1]]
    assert "<hidden>" in converged["runs"][0]  # the diff was shown, masked
    for output in converged["runs"]:
        for secret in secrets:
            assert secret not in output


def test_removing_clusters_from_the_inventory_removes_their_entries(converged, tmp_path):
    # cluster02 and cluster04 leave; each group keeps one cluster, so the topology stays valid.
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO / "inventories/lab", inventory)
    hosts = load(inventory / "hosts.yml")
    for name in ("cluster02", "cluster04"):
        del hosts["all"]["children"]["clusters"]["hosts"][name]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    kubeconfig = tmp_path / "kubeconfig"
    mine = load(converged["kubeconfig"])
    mine["clusters"].append({"name": "mine", "cluster": {"server": "https://192.0.2.1:6443"}})
    kubeconfig.write_text(yaml.safe_dump(mine))

    expose(kubeconfig, inventory=inventory)

    config = load(kubeconfig)
    for section in ("clusters", "contexts", "users"):
        names = sorted(e["name"] for e in config[section])
        expected = ["cluster01", "cluster03"] if section == "clusters" else [
            "cluster01", "cluster01-reader", "cluster03", "cluster03-reader"]
        assert [n for n in names if n != "mine"] == expected, (section, names)
    assert "mine" in [c["name"] for c in config["clusters"]]
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600


def test_reader_scoped_to_namespaces_and_no_kubeconfig_plan_bindings_and_write_no_file(converged, tmp_path):
    # Check mode: the plan swaps the cluster-wide binding for one RoleBinding per listed namespace, on
    # every cluster, and with the kubeconfig off no file is written.
    kubeconfig = tmp_path / "kubeconfig"
    output = expose(kubeconfig, "--check", "--diff",
                    "-e", '{"apiserver_nodeport_reader_namespaces": ["kube-system", "default"]}',
                    "-e", '{"apiserver_nodeport_kubeconfig_enabled": false}')
    clusters = {host: count for host, count in changed(output).items() if host.startswith("cluster")}
    assert clusters == {"cluster01": 1, "cluster02": 1, "cluster03": 1, "cluster04": 1}, output[-3000:]
    for namespace in ("kube-system", "default"):
        assert output.count("RoleBinding %s/%s" % (namespace, READER)) == 8, output[-3000:]  # before and after
    assert output.count("ClusterRoleBinding %s" % READER) == 8, output[-3000:]
    assert not kubeconfig.exists()
