"""Kernel upgrade decisions: versions, minimum per CNI, ELRepo, GRUB, skip logic and batches."""

from __future__ import annotations

import pytest

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kernel as k


@pytest.mark.parametrize("release, upstream, build, el_major, el_minor, arch, elrepo", [
    ("3.10.0-1160.el7.x86_64", (3, 10, 0), "1160.el7", 7, None, "x86_64", False),
    ("5.14.0-427.13.1.el9_4.x86_64", (5, 14, 0), "427.13.1.el9_4", 9, 4, "x86_64", False),
    ("6.1.0-18-amd64", (6, 1, 0), "18-amd64", None, None, None, False),
    ("4.18.0-553.el8_10.x86_64", (4, 18, 0), "553.el8_10", 8, 10, "x86_64", False),
    ("6.9.7-1.el9.elrepo.x86_64", (6, 9, 7), "1.el9.elrepo", 9, None, "x86_64", True),
    ("5.4.278-1.el7.elrepo.x86_64", (5, 4, 278), "1.el7.elrepo", 7, None, "x86_64", True),
    ("6.12.95+bpo-cloud-amd64", (6, 12, 95), "bpo-cloud-amd64", None, None, None, False),
    ("5.15.0-105-generic", (5, 15, 0), "105-generic", None, None, None, False),
    ("5.14.0-570.el9.aarch64", (5, 14, 0), "570.el9", 9, None, "aarch64", False),
    ("5.10", (5, 10), "", None, None, None, False),
])
def test_parse_release(release, upstream, build, el_major, el_minor, arch, elrepo):
    parsed = k.parse_release(release)
    assert (parsed.upstream, parsed.build, parsed.el_major, parsed.el_minor, parsed.arch, parsed.elrepo) == (
        upstream, build, el_major, el_minor, arch, elrepo)


@pytest.mark.parametrize("bad", ["", "   ", None, 5, "linux-6.1", "el9"])
def test_parse_release_refuses_non_versions(bad):
    with pytest.raises(k.KernelError):
        k.parse_release(bad)


@pytest.mark.parametrize("left, right, expected", [
    ("3.10.0-1160.el7.x86_64", "5.4.278-1.el7.elrepo.x86_64", -1),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.el9.x86_64", 1),   # 427.13.1 > 427
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-503.11.1.el9_5.x86_64", -1),
    ("4.18.0-553.el8_10.x86_64", "4.18.0-553.el8_10.x86_64", 0),
    ("6.1.0-18-amd64", "6.1.0-9-amd64", 1),                         # numeric, not lexical
    ("6.12.95+bpo-cloud-amd64", "6.1.0-35-cloud-amd64", 1),
    ("5.10", "5.10.0", 0),
    ("6.10.0-1.el9.elrepo.x86_64", "6.9.12-1.el9.elrepo.x86_64", 1),  # 6.10 > 6.9
])
def test_compare_releases(left, right, expected):
    assert k.compare_releases(left, right) == expected
    assert k.compare_releases(left=right, right=left) == -expected


def test_newest_release_ignores_non_release_lines():
    lines = ["package kernel-ml is not installed", "6.9.7-1.el9.elrepo.x86_64", "6.10.2-1.el9.elrepo.x86_64", ""]
    assert k.newest_release(lines) == "6.10.2-1.el9.elrepo.x86_64"
    assert k.newest_release(["package kernel-lt is not installed"]) is None


@pytest.mark.parametrize("cni, override, expected", [
    ("cilium", None, "5.10"),
    ("cilium", "", "5.10"),
    ("cilium", "4.9.17", "4.9.17"),   # the lower choice DaoCloud's Cilium guide documents
    ("kosmos", None, None),
    ("none", None, None),
    ("kosmos", "5.4", "5.4"),
])
def test_minimum_for(cni, override, expected):
    assert k.minimum_for(cni, override) == expected


def test_minimum_for_unknown_cni_names_the_field():
    with pytest.raises(k.KernelError, match="cluster_cni 'calico' is unknown"):
        k.minimum_for("calico")


@pytest.mark.parametrize("release, minimum, cni, expected", [
    ("3.10.0-1160.el7.x86_64", "5.10", "cilium", False),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.10", "cilium", True),
    ("6.1.0-18-amd64", "5.10", "cilium", True),
    ("4.18.0-553.el8_10.x86_64", "5.10", "cilium", True),        # RHEL 8.10 exception
    ("4.18.0-553.16.1.el8_10.x86_64", "5.10", "cilium", True),
    ("4.18.0-513.24.1.el8_9.x86_64", "5.10", "cilium", False),   # 8.9 is not covered
    ("4.18.0-553.el8_10.x86_64", "5.10", "kosmos", False),       # exception is Cilium's only
    ("4.18.0-553.el8_10.x86_64", "5.13", "cilium", False),       # and only for the 5.10 minimum
    ("4.18.0-553.el8_10.x86_64", "4.9.17", "cilium", True),
    ("4.9.17-1.el7.x86_64", "4.9.17", "cilium", True),
    ("4.9.16-1.el7.x86_64", "4.9.17", "cilium", False),
    ("5.10.0-30-amd64", "5.10", "cilium", True),
    ("3.10.0-1160.el7.x86_64", None, "none", True),
    # A minimum with a build asks for that build or a later one of the same upstream version.
    ("6.1.0-47-cloud-amd64", "6.1.0-52", "none", False),
    ("6.1.0-52-cloud-amd64", "6.1.0-52", "none", True),
    ("6.1.0-56-cloud-amd64", "6.1.0-52", "none", True),
    ("6.12.38+deb12-cloud-amd64", "6.1.0-52", "none", True),
    ("5.14.0-362.8.1.el9_3.x86_64", "5.14.0-427", "none", False),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427", "none", True),
])
def test_meets_minimum(release, minimum, cni, expected):
    assert k.meets_minimum(release, minimum, cni) is expected


@pytest.mark.parametrize("dist, major, family, codename, expected", [
    ("CentOS", "7", "RedHat", None, ("el", 7)),
    ("Rocky", "9", "RedHat", None, ("el", 9)),
    ("AlmaLinux", "8", "RedHat", None, ("el", 8)),
    ("OracleLinux", "9", "RedHat", None, ("el", 9)),
    ("CentOS", "10", "RedHat", None, ("el", 10)),   # CentOS Stream reports CentOS
    ("Debian", "12", "Debian", "bookworm", ("debian", 12)),
    ("Ubuntu", "22", "Debian", "jammy", ("debian", 22)),
])
def test_platform_of(dist, major, family, codename, expected):
    platform = k.platform_of(dist, major, family, codename)
    assert (platform.family, platform.major) == expected


@pytest.mark.parametrize("dist, major, family, message", [
    ("CentOS", "6", "RedHat", "EL 7 and later"),
    ("Fedora", "40", "RedHat", "not supported"),
    ("Archlinux", "rolling", "Archlinux", "not a number"),
    ("SLES", "15", "Suse", "not supported"),
])
def test_platform_of_refuses(dist, major, family, message):
    with pytest.raises(k.KernelError, match=message):
        k.platform_of(dist, major, family)


@pytest.mark.parametrize("major, key, release_rpm", [
    (8, "RPM-GPG-KEY-elrepo.org", "elrepo-release-8.el8.elrepo.noarch.rpm"),
    (9, "RPM-GPG-KEY-v2-elrepo.org", "elrepo-release-9.el9.elrepo.noarch.rpm"),
    (10, "RPM-GPG-KEY-v2-elrepo.org", "elrepo-release-10.el10.elrepo.noarch.rpm"),
])
def test_elrepo_source_online(major, key, release_rpm):
    source = k.elrepo_source(major, "ml")
    assert source["key_url"] == "https://www.elrepo.org/" + key
    assert source["key_file"] == "/etc/pki/rpm-gpg/" + key
    assert source["release_url"] == "https://www.elrepo.org/" + release_rpm
    assert (source["repo_id"], source["repo_baseurl"], source["package_spec"]) == ("elrepo-kernel", None, "kernel-ml")


def test_elrepo_source_mirror_keeps_everything_on_the_mirror():
    source = k.elrepo_source(9, "lt", "http://mirror.example/elrepo/", "6.6.30")
    assert source["key_url"] == "http://mirror.example/elrepo/RPM-GPG-KEY-v2-elrepo.org"
    assert source["release_url"] == "http://mirror.example/elrepo/elrepo-release-9.el9.elrepo.noarch.rpm"
    assert source["repo_id"] == "elrepo-kernel-mirror"
    assert source["repo_baseurl"] == "http://mirror.example/elrepo/kernel/el9/$basearch/"
    assert source["package_spec"] == "kernel-lt-6.6.30"


def test_el7_requires_a_mirror_and_says_why():
    with pytest.raises(k.KernelError, match="end of life on 2024-06-30.*archived"):
        k.elrepo_source(7, "ml")
    source = k.elrepo_source(7, "ml", "http://mirror.example/elrepo")
    assert source["key_url"].endswith("/RPM-GPG-KEY-elrepo.org")
    assert source["release_url"].endswith("/elrepo-release-7.el7.elrepo.noarch.rpm")


def test_el7_kernel_lt_is_below_cilium_minimum():
    with pytest.raises(k.KernelError, match="kernel-lt on EL7 is the 5.4 series"):
        k.elrepo_source(7, "lt", "http://m", minimum="5.10")
    assert k.elrepo_source(7, "lt", "http://m", minimum="4.9.17")["package"] == "kernel-lt"


@pytest.mark.parametrize("flavor, version, minimum, message", [
    ("rt", None, None, "kernel_upgrade_flavor 'rt' is invalid"),
    ("ml", "5.4.1", "5.10", "kernel_upgrade_version 5.4.1 is below the minimum 5.10"),
])
def test_elrepo_source_refuses(flavor, version, minimum, message):
    with pytest.raises(k.KernelError, match=message):
        k.elrepo_source(9, flavor, None, version, minimum)


@pytest.mark.parametrize("dist, major, codename, package, release, mirror, expected", [
    ("Debian", 12, "bookworm", None, None, None, ("linux-image-amd64", "bookworm-backports")),
    ("Debian", 12, "bookworm", "linux-image-cloud-amd64", "", "deb [trusted=yes] http://m/ ./",
     ("linux-image-cloud-amd64", None)),
    ("Debian", 12, "bookworm", None, "bookworm-backports", "deb http://m/debian bookworm-backports main",
     ("linux-image-amd64", "bookworm-backports")),
    ("Ubuntu", 22, "jammy", None, None, None, ("linux-generic-hwe-22.04", None)),
    ("Ubuntu", 23, "lunar", None, None, None, ("linux-generic", None)),
])
def test_debian_source(dist, major, codename, package, release, mirror, expected):
    source = k.debian_source(k.Platform("debian", dist, major, codename), package, release, mirror)
    assert (source["package"], source["default_release"]) == expected


@pytest.mark.parametrize("depends, expected", [
    ("linux-image-6.12.95+bpo-cloud-amd64 (= 6.12.95-1~bpo12+1)", "6.12.95+bpo-cloud-amd64"),
    ("linux-image-6.1.0-35-amd64 (= 6.1.137-1)", "6.1.0-35-amd64"),
    ("linux-generic-hwe-22.04 (= 6.8.0.40.40~22.04.1), linux-image-6.8.0-40-generic", "6.8.0-40-generic"),
    ("", None),
    (None, None),
])
def test_debian_package_release(depends, expected):
    assert k.debian_package_release(depends) == expected


EL9 = k.Platform("el", "Rocky", 9)
EL8 = k.Platform("el", "AlmaLinux", 8)
EL7_CENTOS = k.Platform("el", "CentOS", 7)
EL7_RHEL = k.Platform("el", "RedHat", 7)
DEBIAN = k.Platform("debian", "Debian", 12, "bookworm")


@pytest.mark.parametrize("platform, uefi, tool, cfg, generate, check", [
    (EL9, False, "grubby", None, None, None),
    (EL9, True, "grubby", None, None, None),   # never the EFI stub
    (EL8, True, "grubby", None, None, None),
    (EL7_CENTOS, False, "grub2-set-default", "/boot/grub2/grub.cfg", ["grub2-mkconfig"], "grub2-script-check"),
    (EL7_CENTOS, True, "grub2-set-default", "/boot/efi/EFI/centos/grub.cfg", ["grub2-mkconfig"], "grub2-script-check"),
    (EL7_RHEL, True, "grub2-set-default", "/boot/efi/EFI/redhat/grub.cfg", ["grub2-mkconfig"], "grub2-script-check"),
    (DEBIAN, False, "grub-set-default", "/boot/grub/grub.cfg", ["grub-mkconfig"], "grub-script-check"),
])
def test_grub_plan(platform, uefi, tool, cfg, generate, check):
    plan = k.grub_plan(platform, uefi, "6.9.7-1.el9.elrepo.x86_64")
    assert (plan["tool"], plan["grub_cfg"], plan["generate"], plan["script_check"]) == (tool, cfg, generate, check)
    if tool == "grubby":
        assert plan["set_default"] == ["grubby", "--set-default", "/boot/vmlinuz-6.9.7-1.el9.elrepo.x86_64"]
    assert "/boot/efi" not in repr(plan) or platform.major == 7


def test_grub_cfg_mode_as_grub_mkconfig_gives_it():
    assert k.grub_cfg_mode("menuentry 'Debian' {\n}\n") == "0444"
    assert k.grub_cfg_mode("set superusers=root\n  password_pbkdf2 root grub.pbkdf2.sha512.x\n") == "0400"


def test_grub_plan_el7_vendor_override():
    assert k.grub_plan(EL7_CENTOS, True, "x", "custom")["grub_cfg"] == "/boot/efi/EFI/custom/grub.cfg"


DEBIAN_CFG = """
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-UUID' {
\tlinux\t/boot/vmlinuz-6.12.95+bpo-cloud-amd64 root=UUID=UUID ro
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-UUID' {
\tmenuentry 'Debian GNU/Linux, with Linux 6.12.95+bpo-cloud-amd64' --class debian $menuentry_id_option \
'gnulinux-6.12.95+bpo-cloud-amd64-advanced-UUID' {
\t\tlinux\t/boot/vmlinuz-6.12.95+bpo-cloud-amd64 root=UUID=UUID ro
\t}
\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-35-cloud-amd64' --class debian $menuentry_id_option \
'gnulinux-6.1.0-35-cloud-amd64-advanced-UUID' {
\t\tlinux\t/boot/vmlinuz-6.1.0-35-cloud-amd64 root=UUID=UUID ro
\t}
}
menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {
\tfwsetup
}
""".replace(" \\\n", " ")

EL7_CFG = """
menuentry 'CentOS Linux (5.4.278-1.el7.elrepo.x86_64) 7 (Core)' --class centos $menuentry_id_option \
'gnulinux-5.4.278-1.el7.elrepo.x86_64-advanced-abc' {
\tlinux16 /vmlinuz-5.4.278-1.el7.elrepo.x86_64 root=/dev/mapper/centos-root ro
}
menuentry 'CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)' --class centos $menuentry_id_option \
'gnulinux-3.10.0-1160.el7.x86_64-advanced-abc' {
\tlinux16 /vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/mapper/centos-root ro
}
menuentry 'CentOS Linux (0-rescue-0123) 7 (Core)' --class centos {
\tlinux16 /vmlinuz-0-rescue-0123 root=/dev/mapper/centos-root ro
}
""".replace(" \\\n", " ")


@pytest.mark.parametrize("cfg, release, style, expected", [
    (DEBIAN_CFG, "6.1.0-35-cloud-amd64", "id", "gnulinux-advanced-UUID>gnulinux-6.1.0-35-cloud-amd64-advanced-UUID"),
    (DEBIAN_CFG, "6.12.95+bpo-cloud-amd64", "id",
     "gnulinux-advanced-UUID>gnulinux-6.12.95+bpo-cloud-amd64-advanced-UUID"),
    (EL7_CFG, "3.10.0-1160.el7.x86_64", "title", "CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)"),
    (EL7_CFG, "5.4.278-1.el7.elrepo.x86_64", "title", "CentOS Linux (5.4.278-1.el7.elrepo.x86_64) 7 (Core)"),
])
def test_grub_entry(cfg, release, style, expected):
    assert k.grub_entry(cfg, release, style) == expected


def test_grub_entry_does_not_match_a_prefix_of_another_release():
    with pytest.raises(k.KernelError, match="no boot entry for kernel 6.1.0-3-cloud-amd64"):
        k.grub_entry(DEBIAN_CFG, "6.1.0-3-cloud-amd64")


@pytest.mark.parametrize("running, minimum, cni, installed, force, action", [
    ("6.1.0-18-amd64", "5.10", "cilium", None, False, "skip"),
    ("4.18.0-553.el8_10.x86_64", "5.10", "cilium", None, False, "skip"),
    ("3.10.0-1160.el7.x86_64", None, "kosmos", None, False, "skip"),
    ("3.10.0-1160.el7.x86_64", "5.10", "cilium", None, False, "upgrade"),
    ("5.14.0-427.13.1.el9_4.x86_64", "6.6", "cilium", None, False, "upgrade"),
    ("5.14.0-427.13.1.el9_4.x86_64", "6.6", "cilium", "6.9.7-1.el9.elrepo.x86_64", False, "reboot"),
    # an older kernel-lt already installed does not help: install the newer one
    ("5.14.0-427.13.1.el9_4.x86_64", "6.6", "cilium", "6.1.90-1.el9.elrepo.x86_64", False, "upgrade"),
    ("6.1.0-35-cloud-amd64", "6.6", "cilium", "6.1.0-35-cloud-amd64", False, "upgrade"),
    ("6.1.0-35-cloud-amd64", "5.10", "cilium", None, True, "upgrade"),
    ("6.12.95+bpo-cloud-amd64", "5.10", "cilium", "6.12.95+bpo-cloud-amd64", True, "skip"),
])
def test_decide(running, minimum, cni, installed, force, action):
    decision = k.decide("node-a", running, minimum, cni, installed, force)
    assert decision["action"] == action
    assert decision["node"] == "node-a" and decision["running"] == running


def test_running_problem_names_node_and_kernels():
    assert k.running_problem("n1", "6.12.95+bpo-cloud-amd64", "6.12.95+bpo-cloud-amd64") == ""
    assert k.running_problem("n1", "6.1.0-35-cloud-amd64", "6.12.95+bpo-cloud-amd64").startswith(
        "node n1 runs kernel 6.1.0-35-cloud-amd64 after the reboot, not the installed target 6.12.95+bpo-cloud-amd64")


@pytest.mark.parametrize("running, minimum, installed, force, cordoned, action", [
    # back on a kernel that meets the minimum, left cordoned by the roll: finish it
    ("6.1.0-57-cloud-amd64", "6.1.0-57", "6.1.0-57-cloud-amd64", False, "6.1.0-57-cloud-amd64", "resume"),
    ("6.12.95+bpo-cloud-amd64", "5.10", "6.12.95+bpo-cloud-amd64", True, "6.12.95+bpo-cloud-amd64", "resume"),
    # back on the old kernel (boot loader fallback): the target is installed, boot it again
    ("6.1.0-50-cloud-amd64", "6.1.0-57", "6.1.0-57-cloud-amd64", False, "6.1.0-57-cloud-amd64", "reboot"),
    # stopped before the install finished: install again
    ("6.1.0-50-cloud-amd64", "6.1.0-57", None, False, "6.1.0-57-cloud-amd64", "upgrade"),
])
def test_decide_after_an_interrupted_roll(running, minimum, installed, force, cordoned, action):
    decision = k.decide("node-a", running, minimum, "cilium", installed, force, cordoned)
    assert decision["action"] == action
    if action == "resume":
        assert "interrupted upgrade to %s left the Node cordoned" % cordoned in decision["reason"]


@pytest.mark.parametrize("node_object, expected", [
    ({"metadata": {"annotations": {k.CORDON_ANNOTATION: "6.1.0-57-cloud-amd64"}}, "spec": {"unschedulable": True}},
     "6.1.0-57-cloud-amd64"),
    # uncordoned by someone since: nothing left to finish
    ({"metadata": {"annotations": {k.CORDON_ANNOTATION: "6.1.0-57-cloud-amd64"}}, "spec": {}}, None),
    # cordoned by someone else: not the role's to uncordon
    ({"metadata": {"annotations": {"other": "x"}}, "spec": {"unschedulable": True}}, None),
    ({"metadata": {}, "spec": {"unschedulable": True}}, None),
    (None, None),
])
def test_cordoned_for_only_a_node_the_roll_cordoned(node_object, expected):
    assert k.cordoned_for(node_object) == expected


@pytest.mark.parametrize("result, detail", [
    # ansible.builtin.reboot when the node does not answer within reboot_timeout
    ({"failed": True, "rebooted": True, "msg": "Timed out waiting for last boot time check (timeout=5)"},
     "Timed out waiting for last boot time check (timeout=5)"),
    # the connection itself lost (kept by ignore_unreachable)
    ({"unreachable": True, "msg": "Failed to connect to the host via ssh: timed out"},
     "Failed to connect to the host via ssh: timed out"),
    ({}, "no answer"),
])
def test_reboot_problem_names_node_timeout_and_target(result, detail):
    text = k.reboot_problem("node-a", result, 5, "6.1.0-57-cloud-amd64")
    assert text.startswith("node node-a did not come back within 5 s after rebooting into "
                           "6.1.0-57-cloud-amd64 (%s)" % detail)
    assert "the previous one is still installed" in text


def test_no_reboot_problem_for_a_node_that_came_back():
    assert k.reboot_problem("node-a", {"rebooted": True, "changed": True, "elapsed": 71}, 900, "x") == ""


def test_stop_message_after_the_drain_leaves_the_node_cordoned_and_says_how_to_resume():
    text = k.stop_message("node-a", "host-a", "cluster01", "Check that the node came back after the reboot",
                          {"msg": "node node-a did not come back within 5 s\n after rebooting."}, True)
    assert text.startswith("kernel upgrade stopped at node node-a (host host-a, cluster cluster01) in step 'Check "
                           "that the node came back after the reboot': node node-a did not come back within 5 s "
                           "after rebooting. The Node is left cordoned (annotation %s)." % k.CORDON_ANNOTATION)
    assert "run the playbook again: it finds the Node cordoned by this upgrade, checks the running kernel, waits " \
           "for Ready and uncordons it" in text
    assert text.endswith("No further node was touched.")


def test_stop_message_before_the_drain_says_the_node_still_takes_work():
    text = k.stop_message("node-a", "host-a", "cluster01", "Install the kernel", {"stderr": "E: Unable to locate"},
                          False)
    assert "'Install the kernel': E: Unable to locate. The Node was not drained and still takes work." in text
    assert "cordoned" not in text


@pytest.mark.parametrize("share, total, expected", [
    ("20%", 10, 2), ("20%", 3, 1), ("100%", 4, 4), ("50%", 5, 2), ("3", 10, 3), (2, 10, 2),
])
def test_parse_share(share, total, expected):
    assert k.parse_share(share, total) == expected


@pytest.mark.parametrize("share", ["0%", "120%", "0", "-1", "abc", "%"])
def test_parse_share_refuses(share):
    with pytest.raises(k.KernelError, match="kernel_upgrade_worker_batch"):
        k.parse_share(share, 10)


def _node(name, cluster, cp=False, action="upgrade"):
    return {"name": name, "cluster": cluster, "control_plane": cp, "action": action}


def test_plan_batches_control_plane_one_at_a_time_then_worker_share_per_cluster():
    nodes = [
        _node("b-w1", "cluster02"), _node("a-cp2", "cluster01", True), _node("a-cp1", "cluster01", True),
        _node("a-w1", "cluster01"), _node("a-w2", "cluster01"), _node("a-w3", "cluster01"),
        _node("a-w4", "cluster01", action="skip"), _node("a-w5", "cluster01"),
        _node("b-cp1", "cluster02", True, "skip"),
    ]
    plan = k.plan_batches(nodes, "40%")
    # cluster01 has 5 workers: 40% -> 2 at a time; the skipped one counts toward capacity only
    assert plan["batches"] == [["a-cp1"], ["a-cp2"], ["a-w1", "a-w2"], ["a-w3", "a-w5"], ["b-w1"]]
    assert plan["serial"] == [1, 1, 2, 2, 1]
    assert plan["order"] == ["a-cp1", "a-cp2", "a-w1", "a-w2", "a-w3", "a-w5", "b-w1"]


def test_plan_batches_nothing_to_do():
    assert k.plan_batches([_node("a", "c1", action="skip")]) == {"batches": [], "order": [], "serial": []}


def test_plan_batches_refuses_nodes_without_cluster_or_twice():
    with pytest.raises(k.KernelError, match="has no cluster"):
        k.plan_batches([{"name": "x", "cluster": None}])
    with pytest.raises(k.KernelError, match="listed twice"):
        k.plan_batches([_node("x", "c"), _node("x", "c")])


@pytest.mark.parametrize("labels, override, expected", [
    ({"node-role.kubernetes.io/control-plane": ""}, None, True),
    ({"node-role.kubernetes.io/master": ""}, None, True),
    ({"kubernetes.io/hostname": "w"}, None, False),
    (None, None, False),
    ({"node-role.kubernetes.io/control-plane": ""}, False, False),
    ({}, True, True),
])
def test_is_control_plane(labels, override, expected):
    assert k.is_control_plane(labels, override) is expected


def test_cluster_of():
    assert k.cluster_of("n", ["cluster01_nodes", "all_linux"], ["cluster01", "cluster02"]) == "cluster01"
    assert k.cluster_of("n", [], ["cluster01", "cluster02"], "cluster02") == "cluster02"
    with pytest.raises(k.KernelError, match="in 2 <cluster>_nodes groups"):
        k.cluster_of("n", ["cluster01_nodes", "cluster02_nodes"], ["cluster01", "cluster02"])
    with pytest.raises(k.KernelError, match="in no <cluster>_nodes groups"):
        k.cluster_of("n", ["web"], ["cluster01"])
    with pytest.raises(k.KernelError, match="kernel_upgrade_cluster 'cluster09' is not a host"):
        k.cluster_of("n", [], ["cluster01"], "cluster09")
