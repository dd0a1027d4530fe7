"""ansible-playbook playbooks/validate.yml, as a user runs it."""

from __future__ import annotations

from site_helpers import run_playbook  # pylint: disable=import-error


def test_broken_inventory_reports_every_error_in_one_run():
    run = run_playbook("playbooks/validate.yml", inventories=("tests/integration/inventories/broken",), timeout=300,
                       expect=2)
    output = run.output
    for code in ("ID_DUPLICATE", "CIDR_OVERLAP_IN_GROUP", "CIDR_HOST_BITS", "NAME_INVALID", "GROUP_MIXED_CNI",
                 "INTERCONNECT_NO_GATEWAY", "INTERCONNECT_UNKNOWN_GROUP"):
        assert code in output, code
    assert "ID_BREAKS_ENI" in output  # the warning is shown too, without blocking on its own
    assert "10.97.0.0/16" in output  # the corrected network for the host-bits error
    assert "nothing was changed" in output


def test_example_inventory_passes_in_check_mode():
    run = run_playbook("playbooks/validate.yml", "--check", inventories=("inventories/example",), timeout=300)
    assert "Result: OK" in run.stdout
    assert "changed=0" in run.stdout
