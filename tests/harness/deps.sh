#!/usr/bin/env bash
# deps.sh PKG... — install the Debian packages that are not installed yet.
#
# As root it runs apt-get (update once, then install); as anyone else it
# runs the same through sudo when sudo is there, and otherwise prints the
# exact command to run and fails, so a missing package is never a silent
# surprise later in the build.
#
# libcurl: on Debian 12 (bookworm), whose libcurl is 7.88, it also takes
# libcurl 8 from Debian's bookworm-backports suite (adding that suite to
# apt's sources if none names it).  pgpushd works with both, but 7.88
# writes every HTTP/2 frame as its own TLS record: the dispatcher spends
# about a sixth more CPU per push, and light-load latency doubles
# (docs/performance.md).
# PGPUSH_STOCK_CURL=1 keeps the stock 7.88.  Debian 13 ships 8.14 itself.
set -euo pipefail

missing=()
for p in "$@"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done

codename=$( (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") ||
	true)
curl_ver=$(dpkg-query -W -f='${Version}' libcurl4-openssl-dev 2>/dev/null ||
	true)
want_bpo=
if [ "$codename" = bookworm ] && [ "${PGPUSH_STOCK_CURL:-0}" != 1 ] &&
	! dpkg --compare-versions "${curl_ver:-0}" ge 8; then
	want_bpo=1
fi
bpo_pkgs=(libcurl4-openssl-dev libcurl4 curl)
bpo_line='deb http://deb.debian.org/debian bookworm-backports main'

if [ ${#missing[@]} -eq 0 ] && [ -z "$want_bpo" ]; then
	echo "deps: all ${#} packages are installed"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	echo "deps: installing with sudo:" \
		"${missing[*]:-}${want_bpo:+ libcurl 8 (bookworm-backports)}"
	sudo=(sudo)
elif [ "$(id -u)" -ne 0 ]; then
	if [ ${#missing[@]} -gt 0 ]; then
		echo "deps: missing packages: ${missing[*]}" >&2
		echo "deps: run as root:" >&2
		echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	fi
	if [ -n "$want_bpo" ]; then
		echo "deps: libcurl ${curl_ver:-(none)} works, libcurl 8 is" \
			"faster; as root (or PGPUSH_STOCK_CURL=1 to keep it):" >&2
		echo "  echo '$bpo_line' >/etc/apt/sources.list.d/pgpush-bookworm-backports.list" >&2
		echo "  apt-get update && apt-get install -y -t bookworm-backports ${bpo_pkgs[*]}" >&2
	fi
	[ ${#missing[@]} -eq 0 ] || exit 1
	exit 0
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
if [ -n "$want_bpo" ] &&
	! grep -rqs 'bookworm-backports' /etc/apt/sources.list \
		/etc/apt/sources.list.d/; then
	echo "deps: adding Debian's bookworm-backports suite for libcurl 8"
	echo "$bpo_line" | "${sudo[@]}" tee \
		/etc/apt/sources.list.d/pgpush-bookworm-backports.list >/dev/null
fi
"${apt[@]}" update
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
fi
if [ -n "$want_bpo" ]; then
	echo "deps: installing libcurl 8 from bookworm-backports"
	"${apt[@]}" install -y --no-install-recommends -t bookworm-backports \
		"${bpo_pkgs[@]}" ||
		echo "deps: WARNING: libcurl 8 could not be installed;" \
			"keeping libcurl ${curl_ver:-7.88} (slower, works)" >&2
fi
