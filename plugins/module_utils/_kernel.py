# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel upgrade decisions: versions, minimum per CNI, ELRepo sources, GRUB, skip logic, batches.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only: the role gathers facts, these functions decide, the role acts. So every
decision (which key, which package, which GRUB file, skip or not, which batch) is unit-tested
here for EL 7, 8, 9, 10, Debian and Ubuntu without a machine of each kind.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing as t


class KernelError(ValueError):
    """A refused input or an unsupported node; the message names the field or node and the fix."""


# ---- kernel releases ---------------------------------------------------------------------------

_RELEASE = re.compile(r"^\s*(?P<upstream>\d+(?:\.\d+)*)(?P<rest>.*?)\s*$")
_EL_TAG = re.compile(r"\.el(?P<major>\d+)(?:_(?P<minor>\d+))?(?=\.|$)")
_ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x", "i686", "noarch")


@dataclasses.dataclass(frozen=True)
class KernelRelease:
    """A parsed ``uname -r``: the upstream version, then the distribution's build part.

    ``3.10.0-1160.el7.x86_64``: upstream (3, 10, 0), build ``1160``, EL 7, arch x86_64.
    ``5.14.0-427.13.1.el9_4.x86_64``: (5, 14, 0), build ``427.13.1``, EL 9.4.
    ``6.1.0-18-amd64``: (6, 1, 0), build ``18``, flavour ``amd64`` (Debian).
    ``6.9.7-1.el9.elrepo.x86_64``: an ELRepo kernel-ml / kernel-lt build.
    """

    raw: str
    upstream: t.Tuple[int, ...]
    build: str
    el_major: t.Optional[int]
    el_minor: t.Optional[int]
    arch: t.Optional[str]
    elrepo: bool

    @property
    def upstream_text(self) -> str:
        return ".".join(str(n) for n in self.upstream)

    def sort_key(self) -> t.Tuple[t.Any, ...]:
        return (_pad(self.upstream), _segments(self.build))


def _pad(numbers: t.Sequence[int], width: int = 4) -> t.Tuple[int, ...]:
    return tuple(numbers) + (0,) * (width - len(numbers))


def _segments(text: str) -> t.Tuple[t.Tuple[int, t.Any], ...]:
    """rpm-style comparison key: digit runs compare as numbers and beat letter runs."""
    parts = re.findall(r"\d+|[A-Za-z]+", text)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def parse_release(release: t.Any) -> KernelRelease:
    """Parse a kernel release string such as ``uname -r`` prints, or a bare version (``5.10``)."""
    if not isinstance(release, str) or not release.strip():
        raise KernelError("kernel release %r is not a string like '5.14.0-427.13.1.el9_4.x86_64'" % (release,))
    match = _RELEASE.match(release)
    if not match:
        raise KernelError("kernel release %r does not start with a version number (e.g. '6.1.0-18-amd64')" % release)
    upstream = tuple(int(n) for n in match.group("upstream").split("."))
    rest = match.group("rest")
    build = rest[1:] if rest[:1] in ("-", "+", "_", "~") else rest
    arch = None
    for candidate in _ARCHES:
        if build.endswith("." + candidate):
            arch = candidate
            build = build[: -len(candidate) - 1]
            break
    el_major = el_minor = None
    tag = _EL_TAG.search(build)
    if tag:
        el_major = int(tag.group("major"))
        el_minor = int(tag.group("minor")) if tag.group("minor") else None
    return KernelRelease(raw=release.strip(), upstream=upstream, build=build, el_major=el_major,
                         el_minor=el_minor, arch=arch, elrepo=".elrepo" in build)


def compare_releases(left: t.Any, right: t.Any) -> int:
    """-1, 0 or 1: upstream version first, then the distribution build (rpm-like segments)."""
    a, b = parse_release(left).sort_key(), parse_release(right).sort_key()
    return (a > b) - (a < b)


def newest_release(releases: t.Iterable[t.Any]) -> t.Optional[str]:
    """The newest of several releases (e.g. the directories of /lib/modules), or None."""
    parsed = [parse_release(r) for r in releases if isinstance(r, str) and r.strip() and r[:1].isdigit()]
    if not parsed:
        return None
    return max(parsed, key=KernelRelease.sort_key).raw


# ---- minimum per CNI ---------------------------------------------------------------------------

# Cilium's system requirements: 5.10 or later, except RHEL 8.10's 4.18 which carries the
# backported eBPF features. DaoCloud's Cilium guide documents 4.9.17 (also kubespray's assert): a lower,
# documented choice for older Cilium releases, never the default.
CNI_MINIMUM: t.Dict[str, t.Optional[str]] = {"cilium": "5.10", "kosmos": None, "none": None}


def minimum_for(cni: t.Any, override: t.Any = None) -> t.Optional[str]:
    """The minimum kernel version to enforce: the override, else what the CNI needs (None: no need)."""
    if override not in (None, ""):
        parse_release(str(override))
        return str(override)
    if cni not in CNI_MINIMUM:
        raise KernelError("cluster_cni %r is unknown; expected one of %s, or set kernel_upgrade_min_version"
                          % (cni, ", ".join(sorted(CNI_MINIMUM))))
    return CNI_MINIMUM[cni]


def meets_minimum(release: t.Any, minimum: t.Optional[str], cni: t.Optional[str] = None) -> bool:
    """True when ``release`` satisfies ``minimum``; RHEL 8.10's 4.18 counts as 5.10 for Cilium.

    A bare minimum (``5.10``) compares the upstream version; one with a build (``6.1.0-52``,
    ``5.14.0-427``) also asks for that build or a later one of the same version: distributions
    ship fixes within one upstream version (Debian's ABI number, RHEL's z-stream), and a site
    may require one of them.
    """
    if minimum is None:
        return True
    parsed, floor = parse_release(release), parse_release(minimum)
    if floor.build:
        if parsed.sort_key() >= floor.sort_key():
            return True
    elif _pad(parsed.upstream) >= _pad(floor.upstream):
        return True
    return cni == "cilium" and minimum == CNI_MINIMUM["cilium"] and _is_rhel_8_10(parsed)


def _is_rhel_8_10(release: KernelRelease) -> bool:
    # RHEL 8.10 and its rebuilds ship 4.18.0-553.*.el8_10; Cilium supports it despite 4.18 < 5.10.
    if release.upstream[:2] != (4, 18) or release.el_major != 8:
        return False
    if release.el_minor is not None:
        return release.el_minor >= 10
    build = re.match(r"\d+", release.build)
    return bool(build) and int(build.group(0)) >= 553


# ---- distributions -----------------------------------------------------------------------------

EL_FAMILY = ("RedHat",)
EL_DISTRIBUTIONS = ("RedHat", "CentOS", "Rocky", "AlmaLinux", "OracleLinux", "Scientific", "CloudLinux")
DEBIAN_DISTRIBUTIONS = ("Debian", "Ubuntu")
# Directory under /boot/efi/EFI/ that holds grub.cfg on EL7, per distribution.
EFI_VENDOR = {"RedHat": "redhat", "CentOS": "centos", "OracleLinux": "redhat", "Scientific": "redhat",
              "CloudLinux": "centos", "Rocky": "rocky", "AlmaLinux": "almalinux"}
FLAVORS = ("lt", "ml")
# Series of ELRepo's kernel-lt where it is fixed and known: EL7's archive ends at 5.4.
ELREPO_LT_SERIES = {7: "5.4"}
ELREPO_URL = "https://www.elrepo.org"
# ELRepo signs EL9 and later with its v2 key.
ELREPO_V2_KEY_FROM = 9


@dataclasses.dataclass(frozen=True)
class Platform:
    family: str  # "el" or "debian"
    distribution: str
    major: int
    codename: t.Optional[str] = None


def platform_of(distribution: t.Any, major_version: t.Any, os_family: t.Any = None,
                codename: t.Any = None) -> Platform:
    """The node's platform from Ansible facts; refuses what the role does not handle."""
    dist = str(distribution or "")
    try:
        major = int(str(major_version).split(".", maxsplit=1)[0])
    except ValueError:
        raise KernelError("distribution major version %r of %s is not a number" % (major_version, dist)) from None
    if dist in EL_DISTRIBUTIONS or (os_family == "RedHat" and dist != "Fedora" and dist != "Amazon"):
        if major < 7:
            raise KernelError("%s %d is not supported: ELRepo publishes kernels for EL 7 and later only" % (dist, major))
        return Platform("el", dist, major)
    if dist in DEBIAN_DISTRIBUTIONS or os_family == "Debian":
        return Platform("debian", dist if dist in DEBIAN_DISTRIBUTIONS else "Debian", major, str(codename or "") or None)
    raise KernelError("distribution %s (family %s) is not supported: the role handles EL 7-10 and their rebuilds, "
                      "Debian and Ubuntu" % (dist or "unknown", os_family or "unknown"))


# ---- ELRepo ------------------------------------------------------------------------------------

def elrepo_source(major: int, flavor: str = "lt", mirror_url: t.Any = None,
                  version: t.Any = None, minimum: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """Where the key, the elrepo-release package and the kernel come from, for one EL major.

    EL7 is past its end of life (2024-06-30) and ELRepo moved its EL7 tree to an archive that no
    longer receives updates, so it is refused without a mirror that the site controls.
    """
    if flavor not in FLAVORS:
        raise KernelError("kernel_upgrade_flavor %r is invalid; use 'lt' (long-term) or 'ml' (mainline)" % (flavor,))
    mirror = str(mirror_url).rstrip("/") if mirror_url else None
    if major == 7 and not mirror:
        raise KernelError(
            "EL7 needs kernel_upgrade_elrepo_mirror_url: EL7 reached its end of life on 2024-06-30 and ELRepo "
            "archived its EL7 repositories, so packages and keys must come from a mirror the site controls "
            "(layout: <mirror>/RPM-GPG-KEY-elrepo.org, <mirror>/elrepo-release-7.el7.elrepo.noarch.rpm, "
            "<mirror>/kernel/el7/$basearch/)")
    series = ELREPO_LT_SERIES.get(major) if flavor == "lt" else None
    if series and minimum and not meets_minimum(series, minimum) and not version:
        raise KernelError("kernel-lt on EL%d is the %s series, below the minimum %s; set kernel_upgrade_flavor: ml "
                          "or lower kernel_upgrade_min_version" % (major, series, minimum))
    if version:
        parse_release(str(version))
        if minimum and not meets_minimum(str(version), minimum):
            raise KernelError("kernel_upgrade_version %s is below the minimum %s; pin a newer version or lower "
                              "kernel_upgrade_min_version" % (version, minimum))
    key_name = "RPM-GPG-KEY-v2-elrepo.org" if major >= ELREPO_V2_KEY_FROM else "RPM-GPG-KEY-elrepo.org"
    release_rpm = "elrepo-release-%d.el%d.elrepo.noarch.rpm" % (major, major)
    base = mirror or ELREPO_URL
    package = "kernel-%s" % flavor
    return {
        "key_url": "%s/%s" % (base, key_name),
        "key_file": "/etc/pki/rpm-gpg/%s" % key_name,
        "release_url": "%s/%s" % (base, release_rpm),
        # With a mirror the kernel channel is a repository of our own, so nothing reaches elrepo.org.
        "repo_id": "elrepo-kernel-mirror" if mirror else "elrepo-kernel",
        "repo_baseurl": "%s/kernel/el%d/$basearch/" % (mirror, major) if mirror else None,
        "package": package,
        "package_spec": "%s-%s" % (package, version) if version else package,
        "mirror": mirror,
    }


# ---- Debian and Ubuntu -------------------------------------------------------------------------

def debian_source(platform: Platform, package: t.Any = None, default_release: t.Any = None,
                  apt_repository: t.Any = None) -> t.Dict[str, t.Any]:
    """The kernel package and release to install: Debian backports, Ubuntu's HWE kernel.

    With a site mirror (``apt_repository``) the mirror is the source, so no default release is
    assumed; an explicit ``default_release`` always wins.
    """
    if platform.distribution == "Ubuntu":
        default_package = "linux-generic-hwe-%d.04" % platform.major if platform.major % 2 == 0 else "linux-generic"
        release = default_release or None
    else:
        default_package = "linux-image-amd64"
        release = default_release or (
            "%s-backports" % platform.codename if platform.codename and not apt_repository else None)
    return {"package": package or default_package, "default_release": release or None,
            "apt_repository": apt_repository or None}


def debian_package_release(depends: t.Any) -> t.Optional[str]:
    """The kernel release a metapackage points at, from ``dpkg-query -W -f '${Depends}'``.

    ``linux-image-6.12.95+bpo-cloud-amd64 (= 6.12.95-1~bpo12+1)`` gives ``6.12.95+bpo-cloud-amd64``.
    """
    for item in str(depends or "").split(","):
        name = item.strip().split(" ")[0].split("|")[0]
        match = re.match(r"^linux-image-(\d.*)$", name)
        if match:
            return match.group(1)
    return None


# ---- GRUB --------------------------------------------------------------------------------------

def grub_plan(platform: Platform, uefi: bool, release: str, efi_vendor: t.Any = None) -> t.Dict[str, t.Any]:
    """How to make ``release`` the boot default on this platform and firmware.

    EL8 and later keep Boot Loader Spec entries: ``grubby --set-default`` is the whole job and no
    grub.cfg is written. On EL9 /boot/efi/EFI/<vendor>/grub.cfg is a stub that loads
    /boot/grub2/grub.cfg; regenerating into it would break the boot, so it is never a target.
    EL7 regenerates the real config (BIOS: /boot/grub2/grub.cfg, UEFI: the vendor's directory on
    the EFI partition) and selects the entry by title with grub2-set-default.
    Debian and Ubuntu regenerate with grub-mkconfig and select the entry by id with grub-set-default.
    The configuration is generated to stdout (``generate``) and written only when it differs,
    checked by ``script_check`` first, as grub-mkconfig ``-o`` does.
    """
    if platform.family == "el" and platform.major >= 8:
        return {"tool": "grubby", "grub_cfg": None, "default_file": None,
                "set_default": ["grubby", "--set-default", "/boot/vmlinuz-%s" % release],
                "generate": None, "script_check": None, "entry_style": None, "editenv": None}
    if platform.family == "el":
        vendor = efi_vendor or EFI_VENDOR.get(platform.distribution, "redhat")
        cfg = "/boot/efi/EFI/%s/grub.cfg" % vendor if uefi else "/boot/grub2/grub.cfg"
        return {"tool": "grub2-set-default", "grub_cfg": cfg, "default_file": "/etc/default/grub",
                "set_default": ["grub2-set-default"], "generate": ["grub2-mkconfig"],
                "script_check": "grub2-script-check", "entry_style": "title", "editenv": ["grub2-editenv", "list"]}
    # update-grub is grub-mkconfig -o /boot/grub/grub.cfg; the role writes the file itself, so
    # that an unchanged configuration is not rewritten and the run says whether it changed.
    return {"tool": "grub-set-default", "grub_cfg": "/boot/grub/grub.cfg", "default_file": "/etc/default/grub",
            "set_default": ["grub-set-default"], "generate": ["grub-mkconfig"], "script_check": "grub-script-check",
            "entry_style": "id", "editenv": ["grub-editenv", "list"]}


def grub_cfg_mode(content: str) -> str:
    """The mode grub-mkconfig gives the file it writes: 0444, or 0400 when it holds a password."""
    return "0400" if re.search(r"^\s*password", content or "", re.M) else "0444"


_MENU = re.compile(r"""^\s*(?P<kind>menuentry|submenu)\s+(?P<q>['"])(?P<title>.*?)(?P=q)(?P<opts>[^{]*)\{""")
_ENTRY_ID = re.compile(r"""\$menuentry_id_option\s+['"]?(?P<id>[^'"\s]+)['"]?""")


def grub_entry(grub_cfg: str, release: str, style: str = "id") -> str:
    """The ``grub-set-default`` argument that boots ``release``, read from a generated grub.cfg.

    ``style="id"``: Debian's ``submenu-id>entry-id`` path; ``style="title"``: EL7's
    ``Submenu title>Entry title`` path (or the bare title of a top-level entry).
    Recovery entries are never chosen.
    """
    stack: t.List[t.Tuple[str, int]] = []
    depth = 0
    for line in grub_cfg.splitlines():
        match = _MENU.match(line)
        if match:
            ident = _ENTRY_ID.search(match.group("opts"))
            key = ident.group("id") if style == "id" and ident else match.group("title")
            title = match.group("title")
            if match.group("kind") == "submenu":
                stack.append((key, depth))
            elif _entry_boots(title, key, release) and "recovery" not in title.lower():
                return ">".join([s[0] for s in stack] + [key])
            depth += 1
        elif line.rstrip().endswith("{"):
            # Other blocks (function load_video { ... }) close with "}" too.
            depth += 1
        elif line.strip() == "}":
            depth -= 1
            while stack and stack[-1][1] >= depth:
                stack.pop()
    raise KernelError("no boot entry for kernel %s in grub.cfg; was the kernel installed and the config regenerated?"
                      % release)


def _entry_boots(title: str, key: str, release: str) -> bool:
    pattern = re.compile(r"(^|[^0-9A-Za-z.+~-])" + re.escape(release) + r"($|[^0-9A-Za-z.+~-])")
    return bool(pattern.search(title) or pattern.search(key))


# ---- the per-node decision ---------------------------------------------------------------------

ACTIONS = ("skip", "upgrade", "reboot", "resume")

# Set on a Node before the role drains it and removed when the role uncordons it: a Node found
# cordoned with it was left so by an interrupted roll (a reboot that did not come back in time),
# which a re-run finishes. A Node someone else cordoned has no such mark and is left alone.
CORDON_ANNOTATION = "kernel-upgrade.multicloud.interconnect/cordoned-for"


def cordoned_for(node_object: t.Any) -> t.Optional[str]:
    """The target kernel of the roll that cordoned this Node object, when it is still cordoned."""
    node_object = node_object or {}
    annotations = (node_object.get("metadata") or {}).get("annotations") or {}
    target = annotations.get(CORDON_ANNOTATION)
    if target and (node_object.get("spec") or {}).get("unschedulable"):
        return str(target)
    return None


def decide(node: str, running: str, minimum: t.Optional[str], cni: t.Optional[str] = None,
           installed_target: t.Optional[str] = None, force: bool = False,
           cordoned_by_roll: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """What to do on one node.

    - ``skip``: the running kernel meets the minimum (or there is none), and no upgrade is forced;
    - ``resume``: as ``skip``, but an earlier roll cordoned the Node (``cordoned_by_roll``, its
      target) and stopped before the uncordon: verify the kernel, wait for Ready, uncordon;
    - ``reboot``: the chosen package already installed a kernel that meets the minimum; make it the
      default and reboot into it;
    - ``upgrade``: install the package, make its kernel the default, reboot.
    """
    done = None
    if minimum is None and not force:
        done = "no minimum kernel for CNI %s and none set in kernel_upgrade_min_version" % (cni or "-")
    elif not force and meets_minimum(running, minimum, cni):
        done = "running kernel %s meets the minimum %s" % (running, minimum)
    elif force and installed_target and compare_releases(installed_target, running) == 0:
        done = "running kernel %s is the newest the package provides" % running
    if done and cordoned_by_roll:
        return {"node": node, "action": "resume", "running": running, "minimum": minimum,
                "reason": "%s, but an interrupted upgrade to %s left the Node cordoned; verify the kernel, wait for "
                          "Ready, uncordon" % (done, cordoned_by_roll)}
    if done:
        return {"node": node, "action": "skip", "running": running, "minimum": minimum, "reason": done}
    if installed_target and compare_releases(installed_target, running) != 0 and (
            force or meets_minimum(installed_target, minimum, cni)):
        return {"node": node, "action": "reboot", "running": running, "minimum": minimum,
                "reason": "kernel %s is installed but not running; make it the default and reboot" % installed_target}
    why = "forced" if force and (minimum is None or meets_minimum(running, minimum, cni)) else \
        "running kernel %s is below the minimum %s" % (running, minimum)
    return {"node": node, "action": "upgrade", "running": running, "minimum": minimum,
            "reason": "%s; install, make it the default, drain, reboot" % why}


def reboot_problem(node: str, reboot_result: t.Mapping[str, t.Any], timeout: t.Any, target: str) -> str:
    """Why the node did not come back from the reboot (``ansible.builtin.reboot``'s result), or "".

    A node that does not answer in time is reported by that task as failed (timed out) or, when
    the connection itself is lost, as unreachable; both stop the roll with the node's name.
    """
    result = reboot_result or {}
    if result.get("unreachable") or result.get("failed") or not result.get("rebooted", False):
        detail = " ".join(str(result.get("msg") or "no answer").split())
        return ("node %s did not come back within %s s after rebooting into %s (%s); check its console: the new "
                "kernel may not boot, the previous one is still installed" % (node, timeout, target, detail))
    return ""


def running_problem(node: str, running: str, target: str) -> str:
    """Why the node does not run ``target`` after the reboot (a boot loader fell back), or ""."""
    if compare_releases(running, target) != 0 or running.strip() != target.strip():
        return ("node %s runs kernel %s after the reboot, not the installed target %s: the boot default did not "
                "take effect (check the boot loader and its saved entry)" % (node, running, target))
    return ""


def stop_message(node: str, host: str, cluster: str, step: str, failed_result: t.Any, cordoned: bool) -> str:
    """Why the roll stopped at this node, what state the Node is in, and how to go on."""
    result = failed_result if isinstance(failed_result, dict) else {}
    reason = result.get("msg") or result.get("stderr") or "failed"
    reason = " ".join(str(reason).split()).rstrip(".")
    if cordoned:
        state = ("The Node is left cordoned (annotation %s). Once the node is back and healthy, run the playbook "
                 "again: it finds the Node cordoned by this upgrade, checks the running kernel, waits for Ready "
                 "and uncordons it; a node still on the old kernel is upgraded again." % CORDON_ANNOTATION)
    else:
        state = ("The Node was not drained and still takes work. Fix the cause and run the playbook again: nodes "
                 "already on a kernel that meets the minimum are skipped.")
    return ("kernel upgrade stopped at node %s (host %s, cluster %s) in step '%s': %s. %s No further node was "
            "touched." % (node, host, cluster, step, reason, state))


# ---- batches -----------------------------------------------------------------------------------

def parse_share(share: t.Any, total: int) -> int:
    """How many workers go at once: ``"20%"`` of ``total`` (at least 1), or a count."""
    text = str(share).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise ValueError(text)
            return max(1, int(math.floor(total * percent / 100.0)))
        count = int(text)
        if count < 1:
            raise ValueError(text)
        return count
    except ValueError:
        raise KernelError("kernel_upgrade_worker_batch %r is invalid; use a percentage such as '20%%' or a count "
                          "of at least 1" % (share,)) from None


def plan_batches(nodes: t.Sequence[t.Mapping[str, t.Any]], worker_share: t.Any = "20%") -> t.Dict[str, t.Any]:
    """Order nodes into batches: per cluster, control-plane nodes one at a time, then workers.

    ``nodes``: ``{name, cluster, control_plane, action}``; nodes whose action is ``skip`` stay out
    of the roll but count toward the workers' share (it limits how much capacity is away at once).
    Batches never mix clusters. Returns ``batches`` (lists of names), ``order`` and ``serial``
    (batch sizes, the play's ``serial`` list).
    """
    clusters: t.Dict[str, t.List[t.Mapping[str, t.Any]]] = {}
    seen: t.Set[str] = set()
    for node in nodes:
        name = node.get("name")
        if not name or not node.get("cluster"):
            raise KernelError("node %r has no cluster: put it in exactly one <cluster>_nodes group or set "
                              "kernel_upgrade_cluster" % (name,))
        if name in seen:
            raise KernelError("node %s is listed twice" % name)
        seen.add(name)
        clusters.setdefault(str(node["cluster"]), []).append(node)
    batches: t.List[t.List[str]] = []
    for cluster in sorted(clusters):
        members = clusters[cluster]
        control = sorted(str(n["name"]) for n in members if n.get("control_plane") and n.get("action") != "skip")
        workers_all = [n for n in members if not n.get("control_plane")]
        workers = sorted(str(n["name"]) for n in workers_all if n.get("action") != "skip")
        batches.extend([name] for name in control)
        size = parse_share(worker_share, len(workers_all)) if workers_all else 1
        for start in range(0, len(workers), size):
            batches.append(workers[start:start + size])
    return {"batches": batches, "order": [n for b in batches for n in b], "serial": [len(b) for b in batches]}


def is_control_plane(labels: t.Any, override: t.Any = None) -> bool:
    """A control-plane node by the inventory override, else by the kubeadm role labels."""
    if override is not None and override != "":
        return bool(override)
    labels = labels or {}
    return "node-role.kubernetes.io/control-plane" in labels or "node-role.kubernetes.io/master" in labels


def cluster_of(node: str, group_names: t.Iterable[str], clusters: t.Iterable[str], override: t.Any = None) -> str:
    """The cluster (inventory host of the ``clusters`` group) a node belongs to.

    ``kernel_upgrade_cluster`` wins; otherwise the one ``<cluster>_nodes`` group the node is in.
    """
    known = list(clusters or [])
    if override:
        if override not in known:
            raise KernelError("node %s: kernel_upgrade_cluster %r is not a host of the clusters group (%s)"
                              % (node, override, ", ".join(known) or "empty"))
        return str(override)
    found = sorted(c for c in known if "%s_nodes" % c in set(group_names or []))
    if len(found) != 1:
        raise KernelError("node %s is in %s <cluster>_nodes groups (%s); put it in exactly one or set "
                          "kernel_upgrade_cluster" % (node, len(found) or "no", ", ".join(found) or "none"))
    return found[0]


def report_line(decision: t.Mapping[str, t.Any], target: t.Any) -> str:
    """One line of the check-mode report."""
    return "%s: current %s, minimum %s, target %s -> %s (%s)" % (
        decision["node"], decision["running"], decision.get("minimum") or "none",
        target or "-", decision["action"], decision["reason"])
