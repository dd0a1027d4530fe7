"""site.yml on the lab's demo topology, as a user runs it.

net-a (cluster01, cluster02) by Cilium ClusterMesh, net-b (cluster03, cluster04) by Kosmos
ClusterLink reusing net-a's ranges, both joined through Istio east-west gateways. One run
converges, a second run and a check-mode run change nothing, and the status report written at
the end (JSON and SVG) says every peer, Kosmos member and remote secret is in place.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from site_helpers import changed, recap, run_molecule, run_site as site  # pylint: disable=import-error

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module", name="converged")
def fixture_converged(site_converged):
    return site_converged


def test_site_converges_on_the_demo_topology(converged):
    out, first = converged
    status = json.loads((out / "status.json").read_text())
    drift = {name: c["drift"] for name, c in status["clusters"].items() if c["drift"]}
    assert status["healthy"], drift
    assert status["clusters"]["cluster01"]["l3"]["configured"] == ["cluster02"]
    assert status["clusters"]["cluster02"]["l3"]["configured"] == ["cluster01"]
    assert sorted(status["clusters"]["cluster03"]["l3"]["configured"]) == ["cluster03", "cluster04"]
    for name, expected in (("cluster01", ["cluster03", "cluster04"]), ("cluster04", ["cluster01", "cluster02"])):
        assert status["clusters"][name]["remote_secrets"]["configured"] == expected
    assert status["groups"]["net-a"]["shared_ca"] is True
    assert {(link["from"], link["to"], link["status"]) for link in status["links"]} == {
        ("cluster01", "cluster02", "ok"), ("cluster03", "cluster04", "ok"), ("net-a", "net-b", "ok")}
    # "ok" is what the real kvstoremesh and istiod report, not only the objects.
    assert status["connected"] is True
    assert status["clusters"]["cluster01"]["connection"]["cilium"]["connected"] == ["cluster02"]
    assert status["clusters"]["cluster04"]["connection"]["istio"]["connected"] == ["cluster01", "cluster02"]
    root = ET.fromstring((out / "topology.svg").read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "overall: healthy" in first


def test_second_run_changes_nothing(converged):
    """molecule's idempotence: site.yml again, and it fails naming every task that reports a change.

    The suites before this one change the mesh and restore it, but not always to the same bytes (an
    east-west gateway removed and installed again gets other nodePorts), and the status report of
    the session's first converge says so. A converge right before makes the idempotence run the
    second of two runs in a row, which is what it is meant to prove."""
    out, _first = converged
    run_molecule("converge", env={"MOLECULE_STATUS_DIR": out})
    run = run_molecule("idempotence", env={"MOLECULE_STATUS_DIR": out}, expect=None)
    assert run.returncode == 0 and "idempotence] Executed: Successful" in run.output, run.output[-6000:]
    # Every stage imports validate.yml and lease.yml, and the join imports the API server stage again;
    # those plays end before their tasks once the run has done that work: one validation, the lease
    # taken and given back, the API servers exposed once.
    assert task_runs(run.output, "Check the whole topology at once") == 1, run.output[-6000:]
    assert task_runs(run.output, "mesh_lease : Take or renew the mesh lease") == 2
    assert task_runs(run.output, "apiserver_nodeport : Expose the API server") == 1


def test_every_role_did_what_it_promises(converged):
    """molecule's verify: each role's objects read back from the API servers (molecule/default/verify.yml)."""
    run = run_molecule("verify", expect=None)
    assert run.returncode == 0, run.output[-6000:]
    counts = recap(run.output)
    assert sorted(counts) == ["cluster01", "cluster02", "cluster03", "cluster04"]
    assert all(c["failed"] == 0 and c["ok"] >= 7 for c in counts.values()), counts


def test_check_diff_on_converged_lab_changes_nothing(converged):
    out, _first = converged
    output = site(out, "--check", "--diff")
    counts = changed(output)
    assert counts and all(count == 0 for count in counts.values()), counts
    # Check mode takes no lease: the lease plays end before any of their tasks.
    assert task_runs(output, "mesh_lease :") == 0
    assert task_runs(output, "Check the whole topology at once") == 1


def helm_releases(lab):
    """{cluster: sorted release names} from Helm's release Secrets: what any Helm install leaves."""
    from kubernetes import client
    found = {}
    for name, cluster in sorted(lab.clusters.items()):
        secrets = client.CoreV1Api(cluster.api_client()).list_secret_for_all_namespaces(label_selector="owner=helm")
        found[name] = sorted({s.metadata.labels["name"] for s in secrets.items})
    return found


def task_runs(output, task):
    """How many times a task whose header contains ``task`` started in the run (skipped ones included)."""
    return sum(1 for header in re.findall(r"^TASK \[(.*)\]", output, re.M) if task in header)


def task_bodies(output, task):
    """What each run of a task whose header contains ``task`` printed, in order."""
    for block in output.split("\nTASK [")[1:]:
        header, _sep, body = block.partition("\n")
        if task in header:
            yield body


def task_outcomes(output, task):
    """{host: "ok" | "changed" | "skipping" | ...} of the task whose header contains ``task``."""
    outcomes = {}
    for body in task_bodies(output, task):
        for status, host in re.findall(r"^(ok|changed|skipping|failed|fatal): \[([^\]]+)\]", body, re.M):
            outcomes[host] = status
    return outcomes


@pytest.mark.pristine_lab
def test_check_diff_from_nothing_reports_the_whole_plan_and_changes_nothing(lab, tmp_path):
    if helm_releases(lab) != {name: [] for name in lab.clusters}:
        pytest.skip("the lab holds releases of an earlier run: `make lab-down` first (a fresh lab, as in CI, runs it)")
    output = site(tmp_path, "--check", "--diff")
    assert helm_releases(lab) == {name: [] for name in lab.clusters}
    # Every stage plans: Cilium and Kosmos in their groups, Istio and each east-west gateway, the join.
    assert task_outcomes(output, "cilium : Install or upgrade Cilium") == {"cluster01": "changed", "cluster02": "changed"}
    assert task_outcomes(output, "eastwest_gateway : Install the east-west gateway") == {
        name: "changed" for name in ("cluster01", "cluster02", "cluster03", "cluster04")}
    assert task_outcomes(output, "kosmos : Join (or unjoin) the clusters of net-b") == {"cluster03": "changed"}
    assert task_outcomes(output, "Join the groups") == {"cluster01": "changed"}
    assert "GATEWAY_MISSING" not in output and "ISTIO_MISSING" not in output
    for pair in (("cluster01", "cluster03"), ("cluster04", "cluster02")):
        assert "+    %s/Secret/istio-remote-secret-%s:" % pair in output
    assert "+    cluster01/istiod values/global.meshNetworks:" in output
    assert "port: <node port of 15443, once applied>" in output
    assert "token: '********'" in output


def task_block(output, task, host):
    """What a task whose header contains ``task`` printed for ``host`` (its first run)."""
    for body in task_bodies(output, task):
        found = re.search(r"^\w+: \[%s\]( => .*?)?(?=^\w+: \[|\Z)" % re.escape(host), body, re.M | re.S)
        if found:
            return found.group(0)
    return ""


def test_check_with_istio_and_gateways_absent_plans_their_removal(converged, lab):
    # One call per cluster takes Istio away: istiod first, then istio-base (the CRDs go last), and the
    # east-west gateway's release and its rule. Check mode: the plan only.
    out, _first = converged
    before = helm_releases(lab)
    output = site(out, "--check", "--diff", "-v", "--tags", "istio", "-e", "istio_state=absent",
                  "-e", "eastwest_gateway_state=absent")
    assert helm_releases(lab) == before
    clusters = ("cluster01", "cluster02", "cluster03", "cluster04")
    assert task_outcomes(output, "istio : Label the mesh namespace") == {name: "changed" for name in clusters}
    assert task_outcomes(output, "eastwest_gateway : Install the east-west gateway") == {
        name: "changed" for name in clusters}
    for name in clusters:
        istio = task_block(output, "istio : Label the mesh namespace", name)
        actions = re.findall(r"action: (\w+)\n\s+name: (\S+)", istio)
        assert actions == [("uninstall", "istiod"), ("uninstall", "istio-base")], istio[-2000:]
        gateway = task_block(output, "eastwest_gateway : Install the east-west gateway", name)
        assert "action: uninstall" in gateway, gateway[-2000:]
    assert output.count("Gateway istio-system/cross-network-gateway") >= 4, output[-3000:]
