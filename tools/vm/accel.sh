#!/usr/bin/env bash
# Print "kvm" when this machine can run a KVM guest, else "tcg" (software emulation).
# /dev/kvm may exist and open without running guests (nested virtualisation): boot the bare
# firmware under KVM and expect its banner on the serial port. VM_ACCEL=tcg|kvm overrides.
if [[ -n ${VM_ACCEL:-} ]]; then echo "$VM_ACCEL"; exit 0; fi
if [[ -w /dev/kvm ]] && timeout 10 qemu-system-x86_64 -accel kvm -cpu host -machine pc -display none -nodefaults \
     -serial stdio -monitor none </dev/null 2>/dev/null | grep -q -m1 SeaBIOS; then
  echo kvm
  exit 0
fi
echo tcg
