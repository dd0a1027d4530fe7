#!/usr/bin/env python3
"""Write an MBR with one bootable Linux partition and GRUB's BIOS boot code into a disk image.

    mbr.py DISK BOOT_IMG CORE_IMG START_SECTOR SECTORS

Done by hand so the image builds without loop devices: GRUB's boot.img goes into the first
440 bytes, core.img (whose first sector already lists its own length, set by grub-mkimage)
right after the MBR, where boot.img looks for it by default.
"""

import struct
import sys

SECTOR = 512


def main(argv):
    disk, boot_img, core_img, start, sectors = argv[1], argv[2], argv[3], int(argv[4]), int(argv[5])
    with open(boot_img, "rb") as handle:
        boot = handle.read()
    with open(core_img, "rb") as handle:
        core = handle.read()
    if len(boot) != SECTOR:
        sys.exit("boot.img must be one sector, got %d bytes" % len(boot))
    if SECTOR + len(core) > start * SECTOR:
        sys.exit("core.img (%d bytes) does not fit before sector %d" % (len(core), start))
    # CHS fields are unused by modern loaders; 0xFE 0xFF 0xFF means "use LBA".
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start, sectors)
    mbr = boot[:440] + b"\0" * 6 + entry + b"\0" * 48 + b"\x55\xaa"
    assert len(mbr) == SECTOR
    with open(disk, "r+b") as handle:
        handle.write(mbr)
        handle.write(core)


if __name__ == "__main__":
    main(sys.argv)
