"""Rotating net-a's Cilium CA on the lab, where each clustermesh-apiserver Pod runs the real etcd and
kvstoremesh with the certificates and trust bundle the chart mounts.

A first run is killed in its first stage (once it recorded the rotation in a cluster), the way a
controller dies. The rotation is then finished one stage per run; after each stage the real
kvstoremesh of each cluster, started anew by the stage, reports the other ready, and the clusters
hold what the stage promises. Between stages, cilium_mesh.yml keeps the stage (changes nothing) and
check mode names the next stage. A last run with the same name changes nothing. A second rotation,
to the first CA given back as a user gives their own, leaves the lab on the CA it started with.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time

import pytest
from site_helpers import BIN, REPO, ansible_env, changed, core  # pylint: disable=import-error

from test_cilium_mesh import LAB, NAMESPACE, playbook  # pylint: disable=import-error
from test_mesh_control_planes import kvstoremesh, wait_for  # pylint: disable=import-error

from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_fingerprint

pytestmark = pytest.mark.lab

NET_A = ("cluster01", "cluster02")
# Unique per session: a lab kept up between sessions holds the finished records of earlier ones.
ROTATION = "lab-rotation-%d" % time.time()
CONFIRM = ("-e", '{"cilium_ca_rotate_confirm": "rotate the CA"}')
ROTATE = ("-e", "cilium_ca_rotate_group=net-a", "-e", "cilium_ca_rotation=" + ROTATION) + CONFIRM


def flat(run):
    return " ".join((run.stdout + run.stderr).split())


def secret(lab, cluster, name):
    from kubernetes.client.rest import ApiException
    try:
        return core(lab, cluster).read_namespaced_secret(name, NAMESPACE).data or {}
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def ca_state(lab, cluster) -> dict:
    """The issuing CA, the bundle the Pods trust (None: none), the record and the clustermesh-apiserver Pod."""
    from kubernetes.client.rest import ApiException
    api = core(lab, cluster)
    try:
        bundle = api.read_namespaced_config_map("cilium-root-ca.crt", NAMESPACE).data["ca.crt"]
    except ApiException as err:
        assert err.status == 404
        bundle = None
    record = secret(lab, cluster, "cilium-ca-rotation")
    pods = api.list_namespaced_pod(NAMESPACE, label_selector="k8s-app=clustermesh-apiserver").items
    return {
        "issuer": pem_fingerprint(secret(lab, cluster, "cilium-ca")["ca.crt"]),
        "server_cert_ca": pem_fingerprint(secret(lab, cluster, "clustermesh-apiserver-server-cert")["ca.crt"]),
        "trust": bundle_fingerprints(bundle) if bundle else None,
        "record": None if record is None else {
            "rotation": base64.b64decode(record["rotation"]).decode(), "new": pem_fingerprint(record["ca.crt"]),
            "has_key": bool(record.get("ca.key"))},
        "pods": sorted(p.metadata.name for p in pods if not p.metadata.deletion_timestamp),
    }


def both_ready(lab) -> bool:
    return all(kvstoremesh(lab, here).get(peer, {}).get("ready")
               for here, peer in (("cluster01", "cluster02"), ("cluster02", "cluster01")))


def recorded(lab, cluster):
    """The name of the rotation a cluster's record holds (None without one)."""
    record = secret(lab, cluster, "cilium-ca-rotation")
    return base64.b64decode(record["rotation"]).decode() if record else None


def killed_in_the_first_stage(lab, workdir):
    """ca_rotate.yml started, then SIGKILLed with its process group once cluster02 holds the record.

    Its helm never returns (a stand-in that sleeps), so the kill lands in the first stage's Helm call
    whatever the speed of the machine: the record is written, no release is changed."""
    hanging_helm = workdir / "helm"
    hanging_helm.write_text("#!/bin/sh\nexec sleep 600\n", encoding="utf-8")
    hanging_helm.chmod(0o755)
    command = [str(BIN / "ansible-playbook"), "-i", str(LAB[0]), "-i", str(LAB[1]),
               str(REPO / "playbooks/ca_rotate.yml"), *ROTATE, "-e", "cilium_helm_binary=%s" % hanging_helm]
    proc = subprocess.Popen(command, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        wait_for(lambda: recorded(lab, "cluster02") == ROTATION or proc.poll() is not None, 600,
                 "the rotation recorded in cluster02", interval=0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate(timeout=60)[0]
    return proc.returncode, output


@pytest.fixture(scope="module")
def rotation(lab, site_converged, tmp_path_factory):  # pylint: disable=unused-argument
    steps = {"converge": playbook("cilium_mesh.yml", LAB)}
    steps["start"] = {c: ca_state(lab, c) for c in NET_A}
    first = secret(lab, "cluster01", "cilium-ca")
    given = tmp_path_factory.mktemp("ca") / "first-ca.json"
    fd = os.open(given, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"cilium_ca_rotate_cert": first["ca.crt"], "cilium_ca_rotate_key": first["ca.key"]}, f)
    steps["killed"] = killed_in_the_first_stage(lab, tmp_path_factory.mktemp("helm"))
    steps["after_kill"] = {c: ca_state(lab, c) for c in NET_A}
    for until in ("trust", "issue"):
        steps[until] = playbook("ca_rotate.yml", LAB, *ROTATE, "-e", "cilium_ca_rotate_until=" + until)
        steps[until + "_ready"] = wait_for(lambda: both_ready(lab), 120, "kvstoremesh ready both ways after " + until)
        steps[until + "_state"] = {c: ca_state(lab, c) for c in NET_A}
        steps[until + "_mesh"] = playbook("cilium_mesh.yml", LAB)
        steps[until + "_check"] = playbook("ca_rotate.yml", LAB, *ROTATE, "--check", "--diff")
        steps[until + "_after_check"] = {c: ca_state(lab, c) for c in NET_A}
    steps["drop"] = playbook("ca_rotate.yml", LAB, *ROTATE)
    steps["drop_ready"] = wait_for(lambda: both_ready(lab), 120, "kvstoremesh ready both ways after drop")
    steps["drop_state"] = {c: ca_state(lab, c) for c in NET_A}
    steps["again"] = playbook("ca_rotate.yml", LAB, *ROTATE)
    steps["site_after"] = playbook("cilium_mesh.yml", LAB)
    steps["end_state"] = {c: ca_state(lab, c) for c in NET_A}
    # Back to the lab's first CA, given as a user gives their own: the suites after this one (and
    # the status report written at the start of the session) find the CA they started with.
    steps["back"] = playbook("ca_rotate.yml", LAB, "-e", "cilium_ca_rotate_group=net-a", "-e",
                             "cilium_ca_rotation=" + ROTATION + "-back", "-e", "@%s" % given, *CONFIRM)
    steps["back_ready"] = wait_for(lambda: both_ready(lab), 120, "kvstoremesh ready both ways after the way back")
    steps["back_state"] = {c: ca_state(lab, c) for c in NET_A}
    return steps


def test_the_killed_run_left_the_group_on_the_old_ca_with_the_rotation_recorded(rotation):
    start, after = rotation["start"], rotation["after_kill"]
    old = start["cluster01"]["issuer"]
    assert start["cluster02"]["issuer"] == old
    # no rotation under way at the start (a lab kept up may hold a finished one)
    assert all(start[c]["record"] is None or not start[c]["record"]["has_key"] for c in NET_A)
    assert rotation["killed"][0] == -signal.SIGKILL, rotation["killed"][1][-3000:]
    assert after["cluster02"]["record"] == {"rotation": ROTATION, "new": after["cluster02"]["record"]["new"], "has_key": True}
    assert after["cluster02"]["record"]["new"] != old
    # whatever the kill interrupted, both clusters still issue from the old CA
    assert {after[c]["issuer"] for c in NET_A} == {old}
    # killed in its Helm call: no release changed, so no clustermesh-apiserver was started anew
    assert {c: after[c]["pods"] for c in NET_A} == {c: start[c]["pods"] for c in NET_A}


def test_each_stage_restarts_the_pods_and_kvstoremesh_reports_every_peer_ready(rotation):
    old = rotation["start"]["cluster01"]["issuer"]
    new = rotation["after_kill"]["cluster02"]["record"]["new"]
    for stage, issuer, trust in (("trust", old, [old, new]), ("issue", new, [old, new])):
        run = rotation[stage]
        assert run.returncode == 0, flat(run)[-6000:]
        assert "This run stops after the %s stage" % stage in flat(run)
        for cluster in NET_A:
            state = rotation[stage + "_state"][cluster]
            assert (state["issuer"], state["server_cert_ca"], state["trust"]) == (issuer, issuer, trust), (stage, cluster)
            assert state["record"] == {"rotation": ROTATION, "new": new, "has_key": True}
        assert rotation[stage + "_ready"] is True
    # every stage started the clustermesh-apiserver anew, so its etcd and kvstoremesh loaded the new trust
    for cluster in NET_A:
        pods = [rotation[step][cluster]["pods"] for step in ("start", "trust_state", "issue_state", "drop_state")]
        assert all(len(p) == 1 for p in pods), pods
        assert len({p[0] for p in pods}) == 4, pods
    drop = rotation["drop"]
    assert drop.returncode == 0, flat(drop)[-6000:]
    assert "Stages to run: drop" in flat(drop)
    for cluster in NET_A:
        state = rotation["drop_state"][cluster]
        assert (state["issuer"], state["server_cert_ca"], state["trust"]) == (new, new, None)
        assert state["record"] == {"rotation": ROTATION, "new": new, "has_key": False}
    assert rotation["drop_ready"] is True


def test_between_stages_other_playbooks_keep_the_stage_and_check_mode_names_the_next(rotation):
    for stage, next_stage in (("trust", "issue"), ("issue", "drop")):
        mesh = rotation[stage + "_mesh"]
        assert mesh.returncode == 0, flat(mesh)[-6000:]
        assert all(count == 0 for count in changed(mesh.stdout).values()), (stage, changed(mesh.stdout))
        check = rotation[stage + "_check"]
        assert check.returncode == 0, flat(check)[-6000:]
        assert "Stages to run: %s" % next_stage in flat(check)
        assert rotation[stage + "_after_check"] == rotation[stage + "_state"]


def test_the_rotation_ends_on_a_new_ca_and_the_same_name_changes_nothing(rotation):
    again = rotation["again"]
    assert again.returncode == 0, flat(again)[-6000:]
    assert "Cilium CA rotation %s of network group net-a is finished" % ROTATION in flat(again)
    assert all(count == 0 for count in changed(again.stdout).values()), changed(again.stdout)
    site = rotation["site_after"]
    assert site.returncode == 0 and all(count == 0 for count in changed(site.stdout).values()), changed(site.stdout)
    assert rotation["end_state"] == rotation["drop_state"]
    assert rotation["end_state"]["cluster01"]["issuer"] != rotation["start"]["cluster01"]["issuer"]


def test_a_given_ca_is_rotated_to_in_the_same_stages(rotation):
    """The way back to the first CA, given as base64 PEM with its key: a second rotation over the
    finished record of the first, ending on the CA the session started with."""
    back = rotation["back"]
    assert back.returncode == 0, flat(back)[-6000:]
    text = flat(back)
    new = rotation["drop_state"]["cluster01"]["issuer"]
    first = rotation["start"]["cluster01"]["issuer"]
    assert "from CA %s to %s" % (new, first) in text and "Stages to run: trust, issue, drop" in text
    assert rotation["back_ready"] is True
    for cluster in NET_A:
        state = rotation["back_state"][cluster]
        assert (state["issuer"], state["server_cert_ca"], state["trust"]) == (first, first, None)
        assert state["record"] == {"rotation": ROTATION + "-back", "new": first, "has_key": False}


def test_a_second_rotation_cannot_start_while_one_is_recorded_unfinished(rotation, lab):
    """Read from the clusters: a rotation under another name is refused before any change."""
    del rotation  # ordering only: both rotations have ended
    record = secret(lab, "cluster01", "cilium-ca-rotation")
    unfinished = dict(record, **{"ca.key": secret(lab, "cluster01", "cilium-ca")["ca.key"]})
    api = core(lab, "cluster01")
    api.patch_namespaced_secret("cilium-ca-rotation", NAMESPACE, {"data": unfinished})
    try:
        run = playbook("ca_rotate.yml", LAB, "-e", "cilium_ca_rotate_group=net-a", "-e", "cilium_ca_rotation=other",
                       *CONFIRM)
        assert run.returncode != 0
        text = flat(run)
        assert "CILIUM_CA_ROTATION_IN_PROGRESS" in text
        assert "run ca_rotate.yml with cilium_ca_rotation=%s-back to finish it first" % ROTATION in text
        assert all(count == 0 for count in changed(run.stdout).values()), changed(run.stdout)
    finally:
        api.patch_namespaced_secret("cilium-ca-rotation", NAMESPACE, {"data": record})
