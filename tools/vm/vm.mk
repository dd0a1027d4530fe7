# The Debian test VM for the kernel_upgrade role (included by the main Makefile).
#   make vm-deps    install qemu, debootstrap and friends with apt-get when missing (root)
#   make vm-image   build the cached image (~/.cache/multicloud-interconnect/vm/)
#   make test-vm    the VM-backed tests: a real rolling kernel upgrade of one node
.PHONY: vm-deps vm-image test-vm

VM_PACKAGES := qemu-system-x86 qemu-utils seabios ipxe-qemu debootstrap openssh-client iproute2 ca-certificates
VM_TOOLS := qemu-system-x86_64 qemu-img debootstrap ssh ip

vm-deps:
	@missing=0; for tool in $(VM_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing $(VM_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VM_PACKAGES); \
	fi

vm-image: vm-deps ## build (or reuse) the Debian test VM image
	tools/vm/build-image.sh

# Five boots under software emulation take long: the VM tests run only here (MCI_VM_TESTS=1);
# under `make pytest` they are skipped with that reason.
test-vm: setup vm-deps vm-image ## real rolling kernel upgrade of a Debian VM (qemu, lab Node object)
	MCI_VM_TESTS=1 $(BIN)/pytest -q -m vm tests/vm
