#!/usr/bin/env bash
# fresh-machine.sh [--user] [SUITE] — the README's quick start on a fresh
# Debian, the way a new user meets it.
#
#   1. debootstrap a Debian root (SUITE: bookworm, the default, or trixie;
#      the default variant, as a fresh install has it) in /var/tmp, from
#      the mirror the host's own apt sources name (/etc/apt/sources.list*;
#      FRESH_MIRROR=URL overrides);
#   2. copy this checkout (the files git knows, committed or not; no
#      build/) to /root/pgpush inside it — with --user, install sudo,
#      create a user `tester` who may sudo, and copy it to
#      /home/tester/pgpush instead;
#   3. mount proc, sys and dev, then run the two command lines between the
#      quickstart markers of README.md, verbatim, one after the other, in
#      that directory (as root, or as tester);
#   4. print each step's time; unmount, stop anything left running inside,
#      remove the root (FRESH_KEEP=1 keeps it).
# Exit status 0 only if both lines succeeded.  Needs root on the host and
# network access to the mirror; takes about 20 minutes on two cores (most
# of it the test suite).  Not part of `make test` or CI.
set -euo pipefail

as_user=
if [ "${1:-}" = --user ]; then
	as_user=tester
	shift
fi
suite=${1:-bookworm}
top=$(cd "$(dirname "$0")/../.." && pwd)

die() { echo "fresh-machine: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, mount)"

# The quick start, exactly as the README shows it.
mapfile -t lines < <(awk '/<!-- quickstart -->/ { on = 1; next }
	/<!-- \/quickstart -->/ { on = 0 }
	on && !/^```/ && NF' "$top/README.md")
[ ${#lines[@]} -eq 2 ] ||
	die "expected 2 quick-start lines in README.md, found ${#lines[@]}"

if ! command -v debootstrap >/dev/null 2>&1; then
	echo "fresh-machine: installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

# The host's Debian mirror: the first source that is not the security
# archive (one-line .list and deb822 .sources files alike).
mirror=${FRESH_MIRROR:-$(cat /etc/apt/sources.list \
	/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
	2>/dev/null | awk '
	/^[ \t]*#/ { next }
	$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/)
	                  { print $i; break }; next }
	$1 == "URIs:" { print $2 }' | grep -v -e security -e backports |
	grep -m 1 /debian || true)}
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*;" \
	"set FRESH_MIRROR"

root=$(mktemp -d /var/tmp/pgpush-fresh.XXXXXX)
chmod 755 "$root"
mounted=()
times=()

finish() {
	local rc=$? pid m i
	set +e
	# Anything still running inside the root was started by this script.
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] &&
			kill -KILL "$pid" 2>/dev/null
	done
	sleep 1
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		m=${mounted[$i]}
		umount -R "$m" 2>/dev/null || umount -lR "$m"
	done
	echo
	echo "== fresh-machine: Debian $suite, mirror $mirror," \
		"$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' \
		/proc/cpuinfo))"
	for i in "${times[@]}"; do echo "  $i"; done
	if [ -n "${FRESH_KEEP:-}" ]; then
		echo "  root kept in $root"
	elif ! grep -q " $root/" /proc/mounts; then
		rm -rf "$root"
	else
		echo "  $root still has mounts; not removed" >&2
	fi
	if [ $rc -eq 0 ]; then echo "== PASS"; else echo "== FAIL ($rc)"; fi
	exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# timed LABEL CMD...: run, record the wall time.
timed() {
	local label=$1 t0 rc=0; shift
	echo
	echo "== $label"
	t0=$(date +%s)
	"$@" || rc=$?
	times+=("$(printf '%5d s  %s%s' $(($(date +%s) - t0)) "$label" \
		"$([ $rc -eq 0 ] || echo "  FAILED ($rc)")")")
	return $rc
}

timed "debootstrap $suite from $mirror" \
	debootstrap "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
	{ tail -n 30 "$root.debootstrap.log" >&2; exit 1; }
rm -f "$root.debootstrap.log"

# No services start inside a chroot (a real machine would start the
# postgresql package's own cluster; the quick start does not use it).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"

for m in proc sys dev; do
	mkdir -p "$root/$m"
	case $m in
	proc) mount -t proc proc "$root/proc" ;;
	sys)  mount -t sysfs sysfs "$root/sys" ;;
	dev)  mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev" ;;
	esac
	mounted+=("$root/$m")
done

in_root() {
	chroot "$root" /usr/bin/env -i HOME="${home:-/root}" TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		"$@"
}

home=/root
if [ -n "$as_user" ]; then
	timed "sudo and a user who may use it" in_root sh -c "
		apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q sudo \
			>/dev/null && \
		useradd -m -s /bin/bash $as_user && \
		echo '$as_user ALL=(ALL) NOPASSWD: ALL' \
			>/etc/sudoers.d/$as_user"
	home=/home/$as_user
fi
dest=$home/pgpush

copy() {
	mkdir -p "$root$dest"
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf -) | tar -C "$root$dest" -xf -
	[ -z "$as_user" ] || in_root chown -R "$as_user:" "$dest"
}
timed "copy the checkout to $dest" copy

step=0
for line in "${lines[@]}"; do
	step=$((step + 1))
	if [ -n "$as_user" ]; then
		timed "$line" in_root runuser -u "$as_user" -- \
			env HOME="$home" bash -c "cd $dest && $line"
	else
		timed "$line" in_root bash -c "cd $dest && $line"
	fi
done
