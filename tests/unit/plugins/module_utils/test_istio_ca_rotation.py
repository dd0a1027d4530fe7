"""The Istio root CA rotation's decisions: where each cluster stands, what each stage writes, when the
drop stage may run, and the invariant that every cluster's chain ends in a root every other cluster
trusts, at any point of any stage (clusters change one by one, in any order)."""

from __future__ import annotations

import base64
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.multicloud.interconnect.plugins.filter import ca_rotation as f
from ansible_collections.multicloud.interconnect.plugins.module_utils import _istio_ca_rotation as r
from ansible_collections.multicloud.interconnect.plugins.module_utils._istio_ca import cacerts_roots
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint

from .test_ca_rotation import make_ca

CLUSTERS = ("cluster01", "cluster02", "cluster03")
NOW = 1_800_000_000.0
DAY = 86400


def pem(ca, part="cert"):
    """The PEM text of a test CA's own certificate (not its chain) or of its key."""
    if part == "key":
        return base64.b64decode(ca["key"]).decode()
    return ca["_cert"].public_bytes(serialization.Encoding.PEM).decode()


def chain(ca):
    """The PEM text of a test CA's chain: its certificate, then the CAs above it (a root: itself)."""
    return base64.b64decode(ca["cert"]).decode()


def make_signer(kind, name):
    """A mesh's signer: a root the istio role makes, or a CA of the user's PKI under a corporate root."""
    return make_ca(name) if kind == "made" else make_ca("Mesh CA " + name, make_ca("Corporate Root " + name))


def make_mesh(old_kind="made", new_kind="made"):
    """Two signers (the mesh's and the rotation's) and, per cluster, one intermediate under each."""
    old, new = make_signer(old_kind, "mesh1"), make_signer(new_kind, "mesh1 2026-12")
    return {"old": old, "new": new,
            "ints": {name: {"old": make_ca("Intermediate CA " + name, old), "new": make_ca("Intermediate CA " + name, new)}
                     for name in CLUSTERS}}


# Roots made by the role on both sides; to a CA of the user's PKI (intermediate + corporate root); from one.
@pytest.fixture(scope="module", name="mesh", params=[("made", "made"), ("made", "given"), ("given", "made")],
                ids=["made-to-made", "made-to-given", "given-to-made"])
def fixture_mesh(request):
    return make_mesh(*request.param)


def anchor(ca):
    """Fingerprint of the root a signer's chain ends in."""
    return pem_fingerprint(pem_certificates(chain(ca))[-1])


def stage_data(mesh, name, stage):
    ints = mesh["ints"][name]
    return f.istio_ca_stage_data(stage, chain(mesh["old"]), pem(ints["old"]), pem(ints["old"], "key"),
                                 chain(mesh["new"]), pem(ints["new"]), pem(ints["new"], "key"))


def start_data(mesh, name):
    """cacerts as site.yml writes it before any rotation."""
    from ansible_collections.multicloud.interconnect.plugins.filter.istio import istio_cacerts_data  # pylint: disable=import-outside-toplevel
    ints = mesh["ints"][name]
    return istio_cacerts_data(pem(ints["old"]), pem(ints["old"], "key"), chain(mesh["old"]))


def hostvars(cacerts, issued_at=None):
    hv = {}
    for i, (name, data) in enumerate(sorted(cacerts.items()), start=1):
        hv[name] = {"cluster_id": i, "cluster_network_group": "net-a" if i < 3 else "net-b", "cluster_cni": "cilium",
                    "__istio_rotation_observed": {"cacerts": data, "issued_at": issued_at or "", "istiod": True}}
    return hv


def plan(mesh, cacerts, new=True, promoted=False, issued_at=None, drop_after=DAY, now=NOW, until="drop", check=False,
         under_way=True):
    hv = hostvars(cacerts, issued_at)
    current = chain(mesh["new"] if promoted else mesh["old"])
    return f.istio_ca_rotation_plan(hv, list(hv), list(hv), "2026-12", current, chain(mesh["new"]) if new else None,
                                    drop_after, until, check, under_way, now=now)


def trusts(data):
    """(root the chain ends in, roots trusted) of one cluster's cacerts."""
    root, trusted = cacerts_roots(data)
    return root, set(trusted)


def verify_chain(data):
    """cert-chain.pem is the chain a peer verifies: each certificate signed by the next, ending in a root
    that root-cert.pem holds."""
    certs = [x509.load_pem_x509_certificate(block.encode()) for block in pem_certificates(data["cert-chain.pem"])]
    for lower, upper in zip(certs, certs[1:]):
        lower.verify_directly_issued_by(upper)
    certs[-1].verify_directly_issued_by(certs[-1])
    assert pem_fingerprint(certs[-1].public_bytes(serialization.Encoding.PEM)) in bundle_fingerprints(data["root-cert.pem"])


def every_pair_trusts(cacerts):
    seen = {name: trusts(data) for name, data in cacerts.items()}
    return all(seen[a][0] in seen[b][1] for a in seen for b in seen)


def test_each_stage_writes_the_roots_and_the_chain_istio_reads(mesh):
    old_fp, new_fp = anchor(mesh["old"]), anchor(mesh["new"])
    expected = {"trust": (old_fp, {old_fp, new_fp}), "issue": (new_fp, {old_fp, new_fp}), "drop": (new_fp, {new_fp})}
    for stage, want in expected.items():
        data = stage_data(mesh, "cluster01", stage)
        assert trusts(data) == want, stage
        verify_chain(data)
        # istiod signs with ca-cert.pem/ca-key.pem, and cert-chain.pem starts with ca-cert.pem.
        chain = pem_certificates(data["cert-chain.pem"])
        assert pem_fingerprint(chain[0]) == pem_fingerprint(data["ca-cert.pem"])
        side = "old" if stage == "trust" else "new"
        assert pem_fingerprint(data["ca-cert.pem"]) == pem_fingerprint(pem(mesh["ints"]["cluster01"][side]))
        assert base64.b64decode(data["ca-key.pem"]).decode().strip() == pem(mesh["ints"]["cluster01"][side], "key").strip()
    # What the role waits for istiod to publish: the roots of the cacerts the stage wrote.
    assert f.pem_fingerprints(stage_data(mesh, "cluster01", "trust")["root-cert.pem"]) == sorted([old_fp, new_fp])
    assert f.pem_fingerprints(stage_data(mesh, "cluster01", "drop")["root-cert.pem"]) == [new_fp]


def test_a_mesh_at_the_start_runs_every_stage_and_the_drop_waits_for_workloads(mesh):
    cacerts = {name: start_data(mesh, name) for name in CLUSTERS}
    first = plan(mesh, cacerts, new=False)
    assert first["problems"] == "" and first["todo"] == ["trust", "issue", "drop"]
    assert first["stages"] == dict.fromkeys(CLUSTERS, 0)
    # The issue stage of this run starts the workloads' renewal: drop waits a day from now.
    assert first["run"] == ["trust", "issue"] and "waits until 2027-01-16T08:00:00Z" in first["summary"]
    assert plan(mesh, cacerts, new=False, drop_after=0)["run"] == ["trust", "issue", "drop"]
    # Check mode shows nothing before the new root exists, the first stage once it does.
    assert plan(mesh, cacerts, new=False, check=True)["run"] == []
    assert plan(mesh, cacerts, check=True)["run"] == ["trust"]
    assert plan(mesh, cacerts, until="trust")["run"] == ["trust"]


def test_every_order_of_writes_keeps_every_pair_trusting_each_other(mesh):
    """Stage by stage, cluster by cluster in every order, the plan read at each point goes on where it
    stands, and no pair of clusters ever stops trusting each other's chain."""
    for order in itertools.permutations(CLUSTERS):
        cacerts = {name: start_data(mesh, name) for name in CLUSTERS}
        issued = None
        for expected_todo in (["trust", "issue", "drop"], ["issue", "drop"], ["drop"]):
            current = plan(mesh, cacerts, issued_at=issued, drop_after=0)
            assert current["todo"] == expected_todo, order
            stage = current["todo"][0]
            for done, name in enumerate(order):
                cacerts[name] = stage_data(mesh, name, stage)
                assert every_pair_trusts(cacerts), (order, stage, name)
                if done < len(order) - 1:
                    # Stopped here, a new run resumes the same stage.
                    assert plan(mesh, cacerts, issued_at=issued, drop_after=0)["todo"][0] == stage
            if stage == "issue":
                issued = r.format_time(NOW)
        finished = plan(mesh, cacerts, issued_at=issued, drop_after=0)
        assert finished["todo"] == ["drop"] and finished["stages"] == dict.fromkeys(CLUSTERS, 3)
        promoted = plan(mesh, cacerts, promoted=True, issued_at=issued)
        assert promoted["promoted"] and promoted["todo"] == [] and promoted["problems"] == ""
        assert "is finished" in promoted["summary"]


def test_without_the_check_the_drop_would_break_a_pair():
    """The invariant test above fails on a plan that drops the old root before every cluster signs with the
    new one: a trust stage skipped leaves pairs whose chains the other side does not trust."""
    mesh = make_mesh()
    cacerts = {name: start_data(mesh, name) for name in CLUSTERS}
    cacerts["cluster01"] = stage_data(mesh, "cluster01", "drop")
    assert not every_pair_trusts(cacerts)


def test_the_drop_stage_waits_from_the_recorded_issue_time(mesh):
    cacerts = {name: stage_data(mesh, name, "issue") for name in CLUSTERS}
    issued = r.format_time(NOW - 3600)
    waiting = plan(mesh, cacerts, issued_at=issued)
    assert waiting["todo"] == ["drop"] and waiting["run"] == []
    assert "waits until %s" % r.format_time(NOW - 3600 + DAY) in waiting["summary"]
    assert plan(mesh, cacerts, issued_at=r.format_time(NOW - DAY - 1))["run"] == ["drop"]
    assert plan(mesh, cacerts, issued_at=issued, drop_after=0)["run"] == ["drop"]


def test_a_cluster_added_during_the_rotation_takes_the_stage_values(mesh):
    cacerts = {name: stage_data(mesh, name, "trust") for name in CLUSTERS[:2]}
    cacerts["cluster03"] = {}
    current = plan(mesh, cacerts)
    assert current["problems"] == "" and current["newcomers"] == ["cluster03"] and current["todo"] == ["issue", "drop"]
    assert "cluster03 has no cacerts yet" in current["summary"]


def test_refusals_name_the_field_the_clusters_and_the_fix(mesh):
    cacerts = {name: start_data(mesh, name) for name in CLUSTERS}
    stray = make_ca("Root CA other")
    cacerts["cluster02"] = f.istio_ca_stage_data("trust", pem(stray), pem(mesh["ints"]["cluster02"]["old"]),
                                                 pem(mesh["ints"]["cluster02"]["old"], "key"), pem(stray),
                                                 pem(mesh["ints"]["cluster02"]["old"]), pem(mesh["ints"]["cluster02"]["old"], "key"))
    state = plan(mesh, cacerts)
    assert "ISTIO_CA_ROTATION_STATE [cluster02]" in state["problems"]
    assert "nothing was changed" in state["problems"] and state["run"] == []
    bad_name = f.istio_ca_rotation_plan(hostvars(cacerts), CLUSTERS, CLUSTERS, "../x", chain(mesh["old"]), None)
    assert "ISTIO_CA_ROTATION_NAME" in bad_name["problems"] and "istio_ca_rotation" in bad_name["problems"]
    partial = f.istio_ca_rotation_plan(hostvars(cacerts), CLUSTERS[:2], CLUSTERS, "r1", chain(mesh["old"]), None)
    assert "ISTIO_CA_ROTATION_PARTIAL [cluster03]" in partial["problems"]
    no_root = f.istio_ca_rotation_plan(hostvars(cacerts), CLUSTERS, CLUSTERS, "r1", "", None)
    assert "ISTIO_CA_ROTATION_NOT_INSTALLED" in no_root["problems"] and "istio_ca_dir" in no_root["problems"]
    hv = hostvars({name: start_data(mesh, name) for name in CLUSTERS})
    hv["cluster01"]["__istio_rotation_observed"]["istiod"] = False
    no_istiod = f.istio_ca_rotation_plan(hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), None)
    assert "ISTIO_CA_ROTATION_NOT_INSTALLED [cluster01]" in no_istiod["problems"]
    # Finished earlier, but a cluster went back to the old root.
    done = {name: stage_data(mesh, name, "drop") for name in CLUSTERS}
    done["cluster03"] = start_data(mesh, "cluster03")
    assert "ISTIO_CA_ROTATION_FINISHED [cluster03]" in plan(mesh, done, promoted=True)["problems"]
    # A rotation promoted once, after which another one moved the mesh to another root: its name is spent.
    moved_on = plan(mesh, {name: start_data(mesh, name) for name in CLUSTERS}, under_way=False)
    assert "ISTIO_CA_ROTATION_FINISHED" in moved_on["problems"] and "another istio_ca_rotation name" in moved_on["problems"]
    assert moved_on["run"] == []
    # Before its root exists a rotation has no marker either: that is a start, not a spent name.
    assert plan(mesh, {name: start_data(mesh, name) for name in CLUSTERS}, new=False, under_way=False)["problems"] == ""


def test_a_rotation_to_a_given_ca_is_finished_before_the_inventory_names_it():
    """After the last stage to a CA of the user's, istio_ca_cert still names the old one until the user sets
    it: the same rotation name then reports it finished instead of refusing or starting again."""
    mesh = make_mesh("made", "given")
    done = {name: stage_data(mesh, name, "drop") for name in CLUSTERS}
    finished = plan(mesh, done, under_way=False)
    assert finished["promoted"] and finished["todo"] == [] and finished["problems"] == ""
    # While any cluster still runs the old root, the same state is a spent name, not a finish.
    done["cluster02"] = start_data(mesh, "cluster02")
    assert "ISTIO_CA_ROTATION_FINISHED" in plan(mesh, done, under_way=False)["problems"]


def test_a_given_ca_that_cannot_sign_intermediates_is_refused_before_any_stage():
    mesh = make_mesh()
    cacerts = {name: start_data(mesh, name) for name in CLUSTERS}
    hv = hostvars(cacerts)
    corporate = make_ca("Corporate Root")
    signer = make_ca("Mesh CA", corporate)
    # Only the intermediate, without the root its chain ends in.
    alone = pem(signer)
    refused = f.istio_ca_rotation_plan(hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), alone, given_key=pem(signer, "key"))
    assert "ISTIO_CA_CERT_INVALID" in refused["problems"] and "not a self-signed root" in refused["problems"]
    assert "istio_ca_rotate_cert" in refused["problems"] and refused["run"] == []
    wrong_key = f.istio_ca_rotation_plan(hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), chain(signer),
                                         given_key=pem(corporate, "key"))
    assert "does not belong to the first certificate" in wrong_key["problems"]
    no_key = f.istio_ca_rotation_plan(hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), chain(signer), given_key="")
    assert "ISTIO_CA_KEY" in no_key["problems"] and "istio_ca_rotate_key" in no_key["problems"]
    fine = f.istio_ca_rotation_plan(hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), chain(signer),
                                    given_key=pem(signer, "key"))
    assert fine["problems"] == "" and fine["todo"] == ["trust", "issue", "drop"]


def test_a_rotation_to_a_given_ca_starts_before_anything_is_recorded():
    """A given CA exists before the rotation's first run (a root it makes does not): that start is not a
    spent name."""
    mesh = make_mesh("made", "given")
    start = plan(mesh, {name: start_data(mesh, name) for name in CLUSTERS}, under_way=True)
    assert start["problems"] == "" and start["todo"] == ["trust", "issue", "drop"]


def test_check_mode_shows_a_stage_of_a_given_ca_once_the_rotation_made_its_intermediates():
    """A given CA is known before the first run, but its intermediates are made by the real run: check mode
    shows no stage values until then (the stage would read files that do not exist yet)."""
    mesh = make_mesh("made", "given")
    hv = hostvars({name: start_data(mesh, name) for name in CLUSTERS})
    args = (hv, CLUSTERS, CLUSTERS, "r1", chain(mesh["old"]), chain(mesh["new"]), DAY, "drop", True, True)
    assert f.istio_ca_rotation_plan(*args, now=NOW, new_made=False)["run"] == []
    assert f.istio_ca_rotation_plan(*args, now=NOW, new_made=True)["run"] == ["trust"]
