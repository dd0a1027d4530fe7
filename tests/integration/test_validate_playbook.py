"""ansible-playbook playbooks/validate.yml, as a user runs it."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"


def playbook(inventory, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(REPO / "playbooks" / "validate.yml"), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_broken_inventory_reports_every_error_in_one_run():
    run = playbook(REPO / "tests/integration/inventories/broken")
    output = run.stdout + run.stderr
    assert run.returncode == 2, output
    for code in ("ID_DUPLICATE", "CIDR_OVERLAP_IN_GROUP", "CIDR_HOST_BITS", "NAME_INVALID", "GROUP_MIXED_CNI",
                 "INTERCONNECT_NO_GATEWAY", "INTERCONNECT_UNKNOWN_GROUP"):
        assert code in output, code
    assert "ID_BREAKS_ENI" in output  # the warning is shown too, without blocking on its own
    assert "10.97.0.0/16" in output  # the corrected network for the host-bits error
    assert "nothing was changed" in output


def test_example_inventory_passes_in_check_mode():
    run = playbook(REPO / "inventories/example", "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Result: OK" in run.stdout
    assert "changed=0" in run.stdout
