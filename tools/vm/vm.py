#!/usr/bin/env python3
"""Boot the test VM built by build-image.sh inside its own network namespace.

    vm.py up RUN_DIR      # boot a fresh overlay of the cached image; prints JSON (ip, key, ...)
    vm.py down RUN_DIR    # stop the VM and the mirror server, delete the namespace

The namespace ``mci-vm`` (not the lab's) holds one end of a veth pair; the host keeps the other
(172.31.254.1/30), so SSH goes only to an address inside this namespace. QEMU's user network
runs in the namespace: the guest's SSH port is forwarded to 172.31.254.2:22, and the guest
reaches the kernel mirror, served on the namespace's loopback, as http://10.0.2.2:8080/.
The guest has no other way out.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
NETNS = os.environ.get("VM_NETNS", "mci-vm")
HOST_IF, NS_IF = "mci-vm0", "mci-vm1"
HOST_IP, VM_IP = "172.31.254.1", "172.31.254.2"
MIRROR_PORT = 8080
MIRROR_URL_FROM_GUEST = "http://10.0.2.2:%d/" % MIRROR_PORT


def run(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def build_image() -> pathlib.Path:
    out = subprocess.run([str(HERE / "build-image.sh")], check=True, capture_output=True, text=True)
    return pathlib.Path(out.stdout.strip().splitlines()[-1])


def _netns_up() -> None:
    if NETNS in run("ip", "netns", "list").stdout.split():
        _netns_down()
    run("ip", "netns", "add", NETNS)
    run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    run("ip", "link", "set", NS_IF, "netns", NETNS)
    run("ip", "addr", "add", HOST_IP + "/30", "dev", HOST_IF)
    run("ip", "link", "set", HOST_IF, "up")
    ns = ("ip", "netns", "exec", NETNS)
    run(*ns, "ip", "addr", "add", VM_IP + "/30", "dev", NS_IF)
    run(*ns, "ip", "link", "set", NS_IF, "up")
    run(*ns, "ip", "link", "set", "lo", "up")


def _netns_down() -> None:
    run("ip", "link", "del", HOST_IF, check=False)
    run("ip", "netns", "del", NETNS, check=False)


def _wait_ssh(timeout: float, serial_log: pathlib.Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((VM_IP, 22), timeout=3) as sock:
                sock.settimeout(5)
                if sock.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        time.sleep(2)
    tail = serial_log.read_text(errors="replace")[-2000:] if serial_log.exists() else ""
    raise RuntimeError("VM did not answer SSH on %s:22 within %ds; serial console:\n%s" % (VM_IP, timeout, tail))


def up(run_dir: pathlib.Path, image_dir: pathlib.Path | None = None, timeout: float = 600) -> dict:
    image_dir = image_dir or build_image()
    info = json.loads((image_dir / "info.json").read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    overlay = run_dir / "disk.qcow2"
    if overlay.exists():
        overlay.unlink()
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image_dir / "disk.raw"), "-F", "raw", str(overlay))
    key = run_dir / "id_ed25519"
    shutil.copyfile(image_dir / "id_ed25519", key)
    key.chmod(0o600)
    _netns_up()
    accel = run(str(HERE / "accel.sh")).stdout.strip() or "tcg"
    serial_log = run_dir / "serial.log"
    ns = ["ip", "netns", "exec", NETNS]
    mirror_log = open(run_dir / "mirror.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    mirror = subprocess.Popen(  # pylint: disable=consider-using-with
        ns + [sys.executable, "-m", "http.server", str(MIRROR_PORT), "--bind", "127.0.0.1",
              "--directory", str(image_dir / "mirror")],
        stdout=mirror_log, stderr=subprocess.STDOUT, start_new_session=True)
    (run_dir / "mirror.pid").write_text(str(mirror.pid))
    cpu = ["-cpu", "host"] if accel == "kvm" else []
    run(*ns, "qemu-system-x86_64", "-accel", accel, *cpu, "-m", "1024", "-smp", "2",
        "-display", "none", "-daemonize", "-pidfile", str(run_dir / "qemu.pid"),
        "-drive", "file=%s,format=qcow2,if=virtio" % overlay,
        "-netdev", "user,id=n0,hostfwd=tcp:%s:22-:22" % VM_IP, "-device", "virtio-net-pci,netdev=n0",
        "-serial", "file:%s" % serial_log, "-monitor", "none")
    _wait_ssh(timeout, serial_log)
    state = {"ip": VM_IP, "key": str(key), "accel": accel, "run_dir": str(run_dir),
             "mirror_url": MIRROR_URL_FROM_GUEST, "serial_log": str(serial_log), **info}
    (run_dir / "state.json").write_text(json.dumps(state, indent=2))
    return state


def _kill_pidfile(path: pathlib.Path, group: bool = False) -> None:
    if not path.exists():
        return
    try:
        pid = int(path.read_text().strip())
        if group:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError, PermissionError):
        pass
    path.unlink()


def down(run_dir: pathlib.Path) -> None:
    _kill_pidfile(run_dir / "qemu.pid")
    _kill_pidfile(run_dir / "mirror.pid", group=True)
    time.sleep(1)
    _netns_down()


def main(argv) -> int:
    if len(argv) != 3 or argv[1] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = pathlib.Path(argv[2]).resolve()
    if argv[1] == "up":
        print(json.dumps(up(run_dir), indent=2))
    else:
        down(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
