#!/usr/bin/env bash
# Builds a small root filesystem from the host's static busybox: DIR/bin/busybox, one
# symlink per applet, the usual top-level directories, and /etc/passwd and /etc/group.
# Usage: scripts/make-busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked" && ldd "$busybox" >/dev/null 2>&1; then
  echo "warning: $busybox is dynamically linked; install busybox-static" >&2
fi
mkdir -p "$dir"/{bin,dev,etc,proc,sys,tmp,srv,root,home,var/tmp,usr/bin,usr/sbin,sbin}
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp" "$dir/var/tmp"
