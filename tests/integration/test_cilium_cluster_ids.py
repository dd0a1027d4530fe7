"""Cluster IDs the inventory leaves out, on the lab: kept where Cilium runs, the lowest free one for a
new cluster, stable across re-runs; cilium-config shows them."""

from __future__ import annotations

import pytest
from site_helpers import changed  # pylint: disable=import-error

from test_cilium_mesh import INVENTORIES, LAB, helm_uninstall, mesh_state, playbook, release_revisions  # pylint: disable=import-error

NO_IDS = LAB + [INVENTORIES / "cilium-ids"]
THREE_NO_IDS = LAB + [INVENTORIES / "cilium3", INVENTORIES / "cilium-ids"]
NET_A = ("cluster01", "cluster02")

pytestmark = pytest.mark.lab


def flat(run):
    return " ".join((run.stdout + run.stderr).split())


@pytest.fixture(scope="module")
def runs(lab):
    result = {"converge": playbook("cilium_mesh.yml", LAB)}
    try:
        result["before"] = {c: release_revisions(lab, c) for c in NET_A}
        result["kept"] = playbook("cilium_mesh.yml", NO_IDS)
        result["after_kept"] = {c: release_revisions(lab, c) for c in NET_A}
        result["check_new"] = playbook("cilium_mesh.yml", THREE_NO_IDS, "--check", "--diff")
        result["new"] = playbook("cilium_mesh.yml", THREE_NO_IDS)
        result["state"] = {c: mesh_state(lab, c) for c in NET_A + ("cluster03",)}
        result["again"] = playbook("cilium_mesh.yml", THREE_NO_IDS)
        result["state_again"] = {c: mesh_state(lab, c) for c in NET_A + ("cluster03",)}
    finally:
        result["back"] = playbook("cilium_mesh.yml", LAB)
        result["uninstalled"] = helm_uninstall(lab, "cluster03")
    return result


def test_clusters_without_cluster_id_keep_the_id_they_run_with(runs):
    assert runs["converge"].returncode == 0, flat(runs["converge"])[-4000:]
    run = runs["kept"]
    assert run.returncode == 0, flat(run)[-6000:]
    text = flat(run)
    assert "cluster01: cluster ID 1 (kept: the ID it runs with)" in text
    assert "cluster02: cluster ID 2 (kept: the ID it runs with)" in text
    # the same values as with the IDs written down: no Helm upgrade, nothing changed
    assert runs["after_kept"] == runs["before"]
    assert all(count == 0 for count in changed(run.stdout).values()), changed(run.stdout)


def test_a_new_cluster_gets_the_lowest_free_id_and_check_mode_says_so_first(runs):
    check = runs["check_new"]
    assert check.returncode == 0, flat(check)[-6000:]
    assert "cluster03: cluster ID 4 (allocated: lowest free)" in flat(check)
    run = runs["new"]
    assert run.returncode == 0, flat(run)[-6000:]
    assert "cluster03: cluster ID 4 (allocated: lowest free)" in flat(run)
    state = runs["state"]
    assert {c: state[c]["id"] for c in state} == {"cluster01": "1", "cluster02": "2", "cluster03": "4"}
    assert state["cluster01"]["peers"] == ["cluster02", "cluster03"]


def test_the_ids_are_stable_across_a_re_run(runs):
    run = runs["again"]
    assert run.returncode == 0, flat(run)[-6000:]
    assert "cluster03: cluster ID 4 (kept: the ID it runs with)" in flat(run)
    assert all(count == 0 for count in changed(run.stdout).values()), changed(run.stdout)
    assert runs["state_again"] == runs["state"]
    assert runs["back"].returncode == 0, flat(runs["back"])[-4000:]
    assert runs["uninstalled"].returncode == 0, runs["uninstalled"].stderr
