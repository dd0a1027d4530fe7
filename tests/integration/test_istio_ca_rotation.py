"""Rotating the Istio mesh's root CA on the lab, where each cluster's istiod is the real pilot-discovery
reading the Secret cacerts the chart mounts (plug-in CA), publishing the roots it trusts in
istio-ca-root-cert and serving, on 15012, a certificate it signs with its intermediate.

A first run stops after the trust stage, as a run interrupted between stages would. Between stages,
site.yml leaves cacerts as the rotation wrote it and check mode names the next stage. A run with the
default wait stops after the issue stage and says when the drop stage may run; a run with no wait
finishes. After each stage every cluster's istiod runs anew, signs with the stage's intermediate,
and its chain ends in a root that every other cluster's istiod publishes. A last run with the same
name changes nothing, and site.yml keeps the new root.
"""

from __future__ import annotations

import re
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from site_helpers import changed, core, run_playbook  # pylint: disable=import-error

from test_mesh_control_planes import clusterz, wait_for  # pylint: disable=import-error

from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, der_fingerprint, pem_fingerprint

pytestmark = pytest.mark.lab

CLUSTERS = ("cluster01", "cluster02", "cluster03", "cluster04")
NS = "istio-system"
# Unique per session: the controller keeps the CA directories of the rotations of earlier sessions.
ROTATION = "lab-istio-%d" % time.time()
ROTATE = ("-e", "istio_ca_rotation=" + ROTATION, "-e", '{"istio_ca_rotate_confirm": "rotate the CA"}')
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", re.S)


def flat(run):
    return " ".join((run.stdout + run.stderr).split())


def play(name, *extra):
    return run_playbook("playbooks/" + name, *extra, expect=None)


def served_chain(lab, cluster) -> list:
    """The certificates istiod serves on 15012 (its own, then the chain it signs with), as a client sees them."""
    run = lab.in_pod(cluster, NS + "/istiod-", "openssl", "s_client", "-connect", "127.0.0.1:15012", "-showcerts")
    blocks = _PEM.findall(run.stdout)
    assert blocks, (cluster, run.stderr[-500:])
    return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]


def state(lab, cluster) -> dict:
    """What istiod of ``cluster`` runs with: the cacerts it reads, the roots it publishes, what it serves."""
    api = core(lab, cluster)
    cacerts = api.read_namespaced_secret("cacerts", NS).data
    published = api.read_namespaced_config_map("istio-ca-root-cert", NS).data["root-cert.pem"]
    pods = [p.metadata.name for p in api.list_namespaced_pod(NS, label_selector="app=istiod").items
            if not p.metadata.deletion_timestamp]
    chain = served_chain(lab, cluster)
    der = [c.public_bytes(Encoding.DER) for c in chain]
    return {"trusted": sorted(bundle_fingerprints(cacerts["root-cert.pem"])), "published": sorted(bundle_fingerprints(published)),
            "intermediate": pem_fingerprint(cacerts["ca-cert.pem"]), "served_by": der_fingerprint(der[1]),
            "served_root": der_fingerprint(der[-1]), "chain": chain, "pods": pods}


def mesh_state(lab, settled=True) -> dict:
    """Every cluster's state once each istiod runs (and, ``settled``, publishes the roots its cacerts names:
    istiod reads them when it starts, so at the start of a session the lab's history decides)."""
    def read():
        found = {c: state(lab, c) for c in CLUSTERS}
        return found if all((s["published"] == s["trusted"] or not settled) and len(s["pods"]) == 1
                            for s in found.values()) else None
    return wait_for(read, 180, "every istiod publishing the roots of its cacerts")


def verifies(chain, roots) -> bool:
    """The served leaf is signed by the served intermediate, and one of ``roots`` signed that intermediate."""
    leaf, intermediate = chain[0], chain[1]
    try:
        leaf.verify_directly_issued_by(intermediate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    for root in roots:
        try:
            intermediate.verify_directly_issued_by(root)
            return True
        except (InvalidSignature, ValueError, TypeError):
            continue
    return False


def published_roots(lab, cluster):
    pem = core(lab, cluster).read_namespaced_config_map("istio-ca-root-cert", NS).data["root-cert.pem"]
    return [x509.load_pem_x509_certificate(b.encode()) for b in _PEM.findall(pem if pem.endswith("\n") else pem + "\n")]


def every_pair_trusts(lab, states) -> list:
    """Pairs (client, server) where the client's published roots do not verify the server's served chain."""
    bad = []
    for client in CLUSTERS:
        roots = published_roots(lab, client)
        for server in CLUSTERS:
            if not verifies(states[server]["chain"], roots):
                bad.append((client, server))
    return bad


def all_synced(remotes):
    """istiod's remote clusters when it answered and every one is synced, else None."""
    return remotes if remotes and "error" not in remotes and set(remotes.values()) == {"synced"} else None


@pytest.fixture(scope="module")
def rotation(lab, site_converged):  # pylint: disable=unused-argument
    steps = {"start": mesh_state(lab, settled=False)}
    steps["trust"] = play("ca_rotate.yml", *ROTATE, "-e", "istio_ca_rotate_until=trust")
    steps["trust_state"] = mesh_state(lab)
    steps["trust_pairs"] = every_pair_trusts(lab, steps["trust_state"])
    steps["trust_site"] = play("site.yml", "--tags", "istio")
    steps["trust_check"] = play("ca_rotate.yml", *ROTATE, "--check", "--diff")
    steps["trust_after"] = mesh_state(lab)
    steps["issue"] = play("ca_rotate.yml", *ROTATE)
    steps["issue_state"] = mesh_state(lab)
    steps["issue_pairs"] = every_pair_trusts(lab, steps["issue_state"])
    steps["drop"] = play("ca_rotate.yml", *ROTATE, "-e", "istio_ca_rotate_drop_after=0")
    steps["drop_state"] = mesh_state(lab)
    steps["drop_pairs"] = every_pair_trusts(lab, steps["drop_state"])
    steps["again"] = play("ca_rotate.yml", *ROTATE)
    steps["site"] = play("site.yml", "--tags", "istio")
    steps["end_state"] = mesh_state(lab)
    steps["remotes"] = {c: wait_for(lambda c=c: all_synced(clusterz(lab, c)), 120,
                                    "istiod of %s synced with every remote cluster" % c) for c in CLUSTERS}
    return steps


def ok(run):
    assert run.returncode == 0, flat(run)[-6000:]
    return run


def test_each_stage_restarts_istiod_on_the_stage_roots_and_every_pair_keeps_trusting_each_other(rotation):
    start = rotation["start"]
    old = start["cluster01"]["trusted"]
    assert len(old) == 1 and all(start[c]["trusted"] == old for c in CLUSTERS)
    trust = rotation["trust_state"]
    new = sorted(set(trust["cluster01"]["trusted"]) - set(old))
    assert len(new) == 1, trust["cluster01"]["trusted"]
    ok(rotation["trust"])
    assert "This run goes through: trust." in flat(rotation["trust"])
    for cluster in CLUSTERS:
        # trust: both roots published, the old intermediate still signs
        assert trust[cluster]["published"] == sorted(old + new)
        assert trust[cluster]["served_by"] == start[cluster]["served_by"] == start[cluster]["intermediate"]
        assert trust[cluster]["served_root"] == old[0]
    ok(rotation["issue"])
    assert "The drop stage waits until" in flat(rotation["issue"]) and "This run goes through: issue." in flat(rotation["issue"])
    issue = rotation["issue_state"]
    for cluster in CLUSTERS:
        # issue: a new intermediate, under the new root, signs; both roots published
        assert issue[cluster]["published"] == sorted(old + new)
        assert issue[cluster]["served_by"] == issue[cluster]["intermediate"] != trust[cluster]["intermediate"]
        assert issue[cluster]["served_root"] == new[0]
    ok(rotation["drop"])
    assert "Stages to run: drop" in flat(rotation["drop"])
    drop = rotation["drop_state"]
    for cluster in CLUSTERS:
        assert drop[cluster]["published"] == new and drop[cluster]["served_root"] == new[0]
        assert drop[cluster]["served_by"] == issue[cluster]["served_by"]
        # every stage started istiod anew
        pods = [rotation[step][cluster]["pods"][0] for step in ("start", "trust_state", "issue_state", "drop_state")]
        assert len(set(pods)) == 4, pods
    for step in ("trust_pairs", "issue_pairs", "drop_pairs"):
        assert rotation[step] == [], step


def test_between_stages_site_keeps_cacerts_and_check_mode_names_the_next_stage(rotation):
    site = ok(rotation["trust_site"])
    assert "is under way" in flat(site) and ROTATION in flat(site)
    assert all(count == 0 for count in changed(site.stdout).values()), changed(site.stdout)
    check = ok(rotation["trust_check"])
    assert "Stages to run: issue, drop" in flat(check) and "Check mode: shows the first stage only." in flat(check)
    after = rotation["trust_after"]
    for cluster in CLUSTERS:
        assert {k: v for k, v in after[cluster].items() if k != "chain"} == \
            {k: v for k, v in rotation["trust_state"][cluster].items() if k != "chain"}


def test_the_rotation_ends_on_the_new_root_and_changes_nothing_after(rotation):
    again = ok(rotation["again"])
    assert "Istio CA rotation %s is finished" % ROTATION in flat(again)
    assert all(count == 0 for count in changed(again.stdout).values()), changed(again.stdout)
    site = ok(rotation["site"])
    assert "is under way" not in flat(site)
    assert all(count == 0 for count in changed(site.stdout).values()), changed(site.stdout)
    end, drop = rotation["end_state"], rotation["drop_state"]
    for cluster in CLUSTERS:
        assert end[cluster]["published"] == drop[cluster]["published"] != rotation["start"][cluster]["published"]
        assert end[cluster]["pods"] == drop[cluster]["pods"]
    assert all(set(r.values()) == {"synced"} for r in rotation["remotes"].values())
