# test/debian_root.sh - sourced by test/trixie/run.sh and test/package/run.sh:
# Debian roots made with debootstrap, kept in a cache so a second run is
# quick, and commands run in them inside a mount namespace of their own.
# Needs root.

# The mirror of this machine's own Debian sources (deb822 or one-line), not
# the security archive; deb.debian.org when there is none.
debian_mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\/*\)$/\1/p' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\/debian\/*\)[[:space:]].*/\2/p' "$f"
	done
	echo http://deb.debian.org/debian
}

# in_root DIR COMMAND...: runs COMMAND chroot'd in DIR with /proc, /dev and
# /sys mounted; the mounts live in a private mount namespace and go away
# with it.  $ROOT_ARCHIVES, when set, is bind-mounted on the root's apt
# archive so that several roots download each package once.
in_root() {
	unshare --mount --propagation private sh -eu -c '
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		mount -t sysfs sysfs "$r/sys"
		if [ -n "${ROOT_ARCHIVES:-}" ]; then
			mkdir -p "$ROOT_ARCHIVES/partial" "$r/var/cache/apt/archives"
			mount --bind "$ROOT_ARCHIVES" "$r/var/cache/apt/archives"
		fi
		cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
		exec chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"' in_root "$@"
}

# make_root DIST DIR "PACKAGES": DIR holds a Debian DIST root with PACKAGES
# installed; made once (debootstrap, minbase), redone only when the package
# list changes.  Package scripts do not start services in it (policy-rc.d).
make_root() {
	mr_dist=$1; mr_dir=$2; mr_packages=$(echo $3)
	[ -f "$mr_dir/.billing-ready" ] && [ "$(cat "$mr_dir/.billing-ready")" = "$mr_packages" ] && return 0
	if [ ! -x "$mr_dir/usr/bin/apt-get" ]; then
		command -v debootstrap >/dev/null || { apt-get update && apt-get install -y --no-install-recommends debootstrap; }
		mr_mirror=$(debian_mirror | head -1)
		echo "== debootstrap $mr_dist from $mr_mirror into $mr_dir"
		rm -rf "$mr_dir.partial"
		mkdir -p "$(dirname "$mr_dir")"
		debootstrap --variant=minbase "$mr_dist" "$mr_dir.partial" "$mr_mirror" > "$mr_dir.debootstrap.log" 2>&1 \
			|| { tail -20 "$mr_dir.debootstrap.log"; return 1; }
		printf '#!/bin/sh\nexit 101\n' > "$mr_dir.partial/usr/sbin/policy-rc.d"
		chmod 755 "$mr_dir.partial/usr/sbin/policy-rc.d"
		rm -rf "$mr_dir"
		mv "$mr_dir.partial" "$mr_dir"
	fi
	if [ -n "$mr_packages" ]; then
		echo "== installing in the $mr_dist root: $mr_packages"
		in_root "$mr_dir" sh -c "apt-get update && apt-get install -y --no-install-recommends $mr_packages" \
			> "$mr_dir.apt.log" 2>&1 || { tail -20 "$mr_dir.apt.log"; return 1; }
	fi
	echo "$mr_packages" > "$mr_dir/.billing-ready"
}

# copy_checkout SRC DEST: the checkout without what a build or a run leaves in it
copy_checkout() {
	rm -rf "$2"
	mkdir -p "$2"
	tar -C "$1" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./log --exclude=./output_iso --exclude=./tmp_check \
		--exclude=./test/unit/bin --exclude=./test/fuzz/bin --exclude='./billing--0.2.0.sql' \
		-cf - . | tar -C "$2" -xf -
}
