"""Rotating the Istio mesh's root CA on the lab, where each cluster's istiod is the real pilot-discovery
reading the Secret cacerts the chart mounts (plug-in CA), publishing the roots it trusts in
istio-ca-root-cert and serving, on 15012, a certificate it signs with its intermediate.

The mesh moves from the root the role made into a CA of a user's PKI (an intermediate under a
corporate root, given as istio_ca_rotate_cert), then back out to a root the role makes. Before
the move, site.yml with that CA as istio_ca_cert and a rotation to a CA that cannot sign
intermediates are refused with nothing changed. A first run stops after the trust stage, as a run
interrupted between stages would. Between stages, site.yml leaves cacerts as the rotation wrote it
and check mode names the next stage. A run with the default wait stops after the issue stage and
says when the drop stage may run; a run with no wait finishes. After each stage every cluster's
istiod runs anew, signs with the stage's intermediate, and its chain ends in a root that every
other cluster's istiod publishes. A last run with the same name changes nothing; site.yml refuses
to run without istio_ca_cert naming the new CA, and changes nothing with it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
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


def served_chain(lab, cluster, pod) -> list:
    """The certificates istiod serves on 15012 (its own, then the chain it signs with), as a client sees them;
    none while a new istiod has not opened the port yet. ``pod``: the istiod Pod's name."""
    run = lab.in_pod(cluster, "%s/%s" % (NS, pod), "openssl", "s_client", "-connect", "127.0.0.1:15012", "-showcerts")
    return [x509.load_pem_x509_certificate(b.encode()) for b in _PEM.findall(run.stdout)]


def state(lab, cluster) -> dict:
    """What istiod of ``cluster`` runs with: the cacerts it reads, the roots it publishes, what it serves
    (an entry "not serving" while it does not serve on 15012 yet)."""
    api = core(lab, cluster)
    cacerts = api.read_namespaced_secret("cacerts", NS).data
    published = api.read_namespaced_config_map("istio-ca-root-cert", NS).data["root-cert.pem"]
    pods = [p.metadata.name for p in api.list_namespaced_pod(NS, label_selector="app=istiod").items
            if not p.metadata.deletion_timestamp]
    # Ask the one istiod the API still counts: during a restart the old Pod keeps serving its old
    # certificate until it is gone, and a prefix could pick it.
    chain = served_chain(lab, cluster, pods[0]) if len(pods) == 1 else []
    if not chain:
        return {"not serving": pods}
    der = [c.public_bytes(Encoding.DER) for c in chain]
    return {"trusted": sorted(bundle_fingerprints(cacerts["root-cert.pem"])), "published": sorted(bundle_fingerprints(published)),
            "intermediate": pem_fingerprint(cacerts["ca-cert.pem"]), "served_by": der_fingerprint(der[1]),
            "served_root": der_fingerprint(der[-1]), "chain": chain, "pods": pods}


def mesh_state(lab, settled=True) -> dict:
    """Every cluster's state once each istiod runs (and, ``settled``, publishes the roots its cacerts names:
    istiod reads them when it starts, so at the start of a session the lab's history decides)."""
    def read():
        found = {c: state(lab, c) for c in CLUSTERS}
        return found if all("not serving" not in s and (s["published"] == s["trusted"] or not settled)
                            and len(s["pods"]) == 1 for s in found.values()) else None
    return wait_for(read, 180, "every istiod publishing the roots of its cacerts")


def verifies(chain, roots) -> bool:
    """The served chain holds: each certificate is signed by the next one served, up to one that one of
    ``roots`` signed (a client's trust anchors; a CA of the user's puts its own CA between)."""
    for lower, upper in zip(chain, chain[1:] + [None]):
        for root in roots:
            try:
                lower.verify_directly_issued_by(root)
                return True
            except (InvalidSignature, ValueError, TypeError):
                continue
        if upper is None:
            return False
        try:
            lower.verify_directly_issued_by(upper)
        except (InvalidSignature, ValueError, TypeError):
            return False
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


def corporate_ca(path_length=None):
    """A CA of a user's PKI as istio_ca_cert takes it (base64 of the mesh CA's PEM, then its root's) and its key."""
    root_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab Corporate Root")])
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(subject, public, length):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(root_name).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=length), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(root_key, hashes.SHA384()))

    root = issue(root_name, root_key.public_key(), None)
    signer = issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab Mesh CA")]), key.public_key(), path_length)
    chain = signer.public_bytes(Encoding.PEM) + root.public_bytes(Encoding.PEM)
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return {"cert": base64.b64encode(chain).decode(), "key": base64.b64encode(key_pem).decode(),
            "root": der_fingerprint(root.public_bytes(Encoding.DER))}


def vars_file(directory, name, values):
    """Extra variables holding a key, as a user passes them from a vault: a file only its owner reads."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return "@%s" % path


@pytest.fixture(scope="module")
def rotation(lab, site_converged, tmp_path_factory):  # pylint: disable=unused-argument
    files = tmp_path_factory.mktemp("istio-ca")
    corporate, unable = corporate_ca(), corporate_ca(path_length=0)
    mine = vars_file(files, "mine.json", {"istio_ca_cert": corporate["cert"], "istio_ca_key": corporate["key"]})
    to_mine = vars_file(files, "to-mine.json", {"istio_ca_rotate_cert": corporate["cert"],
                                                "istio_ca_rotate_key": corporate["key"]})
    steps = {"corporate": corporate, "before": mesh_state(lab, settled=False)}
    steps["site_refused"] = play("site.yml", "--tags", "istio", "-e", mine)
    steps["unable"] = play("ca_rotate.yml", *ROTATE, "-e", vars_file(files, "unable.json", {
        "istio_ca_rotate_cert": unable["cert"], "istio_ca_rotate_key": unable["key"]}))
    steps["first_check"] = play("ca_rotate.yml", *ROTATE, "-e", to_mine, "--check", "--diff")
    steps["start"] = mesh_state(lab, settled=False)
    steps["trust"] = play("ca_rotate.yml", *ROTATE, "-e", to_mine, "-e", "istio_ca_rotate_until=trust")
    steps["trust_state"] = mesh_state(lab)
    steps["trust_pairs"] = every_pair_trusts(lab, steps["trust_state"])
    steps["trust_site"] = play("site.yml", "--tags", "istio")
    steps["trust_check"] = play("ca_rotate.yml", *ROTATE, "-e", to_mine, "--check", "--diff")
    steps["trust_after"] = mesh_state(lab)
    steps["issue"] = play("ca_rotate.yml", *ROTATE, "-e", to_mine)
    steps["issue_state"] = mesh_state(lab)
    steps["issue_pairs"] = every_pair_trusts(lab, steps["issue_state"])
    steps["drop"] = play("ca_rotate.yml", *ROTATE, "-e", to_mine, "-e", "istio_ca_rotate_drop_after=0")
    steps["drop_state"] = mesh_state(lab)
    steps["drop_pairs"] = every_pair_trusts(lab, steps["drop_state"])
    # The inventory names the new CA now; the rotation recorded it, so its name needs it no more.
    steps["again"] = play("ca_rotate.yml", *ROTATE, "-e", mine)
    steps["site_unnamed"] = play("site.yml", "--tags", "istio")
    steps["site"] = play("site.yml", "--tags", "istio", "-e", mine)
    steps["end_state"] = mesh_state(lab)
    steps["remotes"] = {c: wait_for(lambda c=c: all_synced(clusterz(lab, c)), 120,
                                    "istiod of %s synced with every remote cluster" % c) for c in CLUSTERS}
    # Out of the PKI to a root the role makes: the suites after this one run site.yml without istio_ca_cert.
    steps["back"] = play("ca_rotate.yml", "-e", "istio_ca_rotation=" + ROTATION + "-back", *ROTATE[2:], "-e", mine,
                         "-e", "istio_ca_rotate_drop_after=0")
    steps["back_state"] = mesh_state(lab)
    steps["back_pairs"] = every_pair_trusts(lab, steps["back_state"])
    steps["back_site"] = play("site.yml", "--tags", "istio")
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
    assert new == [rotation["corporate"]["root"]], trust["cluster01"]["trusted"]
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


def test_a_ca_of_the_users_own_is_refused_until_the_rotation_moved_the_mesh_to_it(rotation):
    refused = rotation["site_refused"]
    assert refused.returncode != 0 and "ISTIO_CA_DIFFERS [cluster01, cluster02, cluster03, cluster04]" in flat(refused)
    assert "field: istio_ca_cert" in flat(refused) and "playbooks/ca_rotate.yml" in flat(refused)
    unable = rotation["unable"]
    assert unable.returncode != 0 and "ISTIO_CA_CERT_INVALID" in flat(unable) and "pathlen:0" in flat(unable)
    # Check mode before the first stage: the plan, and no stage values (the intermediates are yet to be made).
    first_check = ok(rotation["first_check"])
    assert "Stages to run: trust, issue, drop" in flat(first_check)
    assert "Check mode: the new CAs are made by the real run" in flat(first_check)
    for run in (refused, unable, first_check):
        assert all(count == 0 for count in changed(run.stdout).values()), changed(run.stdout)
    for cluster in CLUSTERS:
        assert {k: v for k, v in rotation["start"][cluster].items() if k != "chain"} == \
            {k: v for k, v in rotation["before"][cluster].items() if k != "chain"}
    # After the move, site.yml without istio_ca_cert would install the role's root again: refused, naming
    # the root the clusters run.
    unnamed = rotation["site_unnamed"]
    corporate = rotation["corporate"]["root"]
    assert unnamed.returncode != 0 and "field: istio_ca_dir" in flat(unnamed) and corporate in flat(unnamed)
    assert "set istio_ca_cert and istio_ca_key to it" in flat(rotation["drop"])


def test_the_mesh_runs_the_users_chain_and_leaves_it_for_a_root_the_role_makes(rotation):
    corporate = rotation["corporate"]["root"]
    for cluster in CLUSTERS:
        # istiod serves its leaf, the cluster's intermediate, the user's mesh CA and the corporate root.
        chain = rotation["end_state"][cluster]["chain"]
        assert [c.subject.rfc4514_string() for c in chain[2:]] == ["CN=Lab Mesh CA", "CN=Lab Corporate Root"]
        assert rotation["end_state"][cluster]["published"] == [corporate]
    back = ok(rotation["back"])
    assert "unset istio_ca_cert and istio_ca_key" in flat(back)
    end = rotation["back_state"]
    for cluster in CLUSTERS:
        assert len(end[cluster]["published"]) == 1 and end[cluster]["published"] != [corporate]
        assert end[cluster]["served_root"] == end[cluster]["published"][0] and len(end[cluster]["chain"]) == 3
    assert rotation["back_pairs"] == []
    site = ok(rotation["back_site"])
    assert all(count == 0 for count in changed(site.stdout).values()), changed(site.stdout)
