#!/usr/bin/env bash
# The Debian package of event_store (debian/): one binary package per
# PostgreSQL major, postgresql-MAJOR-event-store, and the command-line tool,
# event-store-tools (/usr/bin/esctl, built once on libpq).
#
#   bash scripts/deb.sh build OUTDIR
#       builds the package for ES_PG_MAJOR (15; 17 in trixie, 18 in sid) with
#       dpkg-buildpackage from a copy of the tree, installs the missing build
#       dependencies (as root), copies the .deb files into OUTDIR and checks
#       the packages' names, dependencies and files (one line per check)
#   bash scripts/deb.sh install-test DEB
#       installs DEB with apt in a fresh copy of a minimal Debian 12 chroot
#       (debootstrap --variant=minbase, made once and kept as a tarball in
#       ES_CACHE), without the source tree, and runs the demo against the
#       packaged files (scripts/demo.sh, ES_DEMO_INSTALLED=1); with it the
#       event-store-tools package found beside DEB, whose esctl must run
#       there and read the demo's events; needs root
#   bash scripts/deb.sh prepare
#       makes that tarball only, if missing
#
# Both end nonzero, with the reason, if a step or a check fails.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$top/scripts/lib.sh"

cache=$(readlink -m "${ES_CACHE:-/var/cache/event_store-test}")
mirror=${ES_MIRROR:-http://deb.debian.org/debian}
failed=0
# what the EXIT trap removes: temporary folders (after unmounting whatever
# is mounted below them)
tmpdirs=()

die() { es_log "$*"; exit 1; }

# check DESCRIPTION COMMAND...: one line per check; a failure is counted
check() {
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then
    printf '  ok      %s\n' "$what"
  else
    printf '  FAILED  %s\n' "$what"
    failed=$((failed + 1))
  fi
}

# timed NAME COMMAND...: run a step and log how long it took (on the
# script's own stderr, fd 3, whatever the step's output is redirected to)
exec 3>&2
timed() {
  local name=$1 t0 ms rc=0
  shift
  t0=$(date +%s%N)
  "$@" || rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  es_log "$name: $((ms / 1000)).$((ms % 1000 / 100)) s" 2>&3
  return $rc
}

# umount_below DIR: unmount everything mounted in DIR, deepest first
umount_below() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

# remove_dir DIR: unmount what is mounted in DIR, then remove it; a folder
# that still has something mounted in it is left (and named), never removed
remove_dir() {
  [ -d "$1" ] || return 0
  umount_below "$1"
  if awk -v d="$1/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    es_log "left $1: something is still mounted in it"
    return 1
  fi
  rm -rf --one-file-system "$1"
}

# the EXIT trap: the temporary folders
cleanup() {
  local d
  for d in ${tmpdirs[@]+"${tmpdirs[@]}"}; do remove_dir "$d" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# lacks PATTERN TEXT: no line of TEXT matches PATTERN
lacks() { ! grep -q "$1" <<< "$2"; }

# apt_quiet ARGS...: apt-get ARGS, its output shown only if it fails
apt_quiet() {
  local log rc=0
  log=$(mktemp "${TMPDIR:-/tmp}/event_store-apt.XXXXXX")
  DEBIAN_FRONTEND=noninteractive apt-get "$@" > "$log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || tail -n 30 "$log" >&2
  rm -f "$log"
  return "$rc"
}

# need PACKAGE...: install those of the Debian packages that are missing
need() { es_install_packages "$@" || die "could not install what is missing of: $*"; }

# ---------------------------------------------------------------------------
# build OUTDIR

# copy_tree DIR: the source tree without .git and what builds leave (the
# .gitignore files' patterns)
copy_tree() {
  rsync -a --exclude .git --filter=':- .gitignore' --exclude '*.o' --exclude '*.so' \
    --exclude '*.bc' --exclude '/build-*/' "$top/" "$1/"
}

# build_deps SRC: what dpkg-buildpackage needs for SRC's debian/control
build_deps() {
  local src=$1
  dpkg-checkbuilddeps "$src/debian/control" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "build dependencies missing ($(dpkg-checkbuilddeps "$src/debian/control" 2>&1 || true)); run as root to install them"
  es_log "installing the build dependencies (apt-get build-dep)"
  apt_quiet build-dep -y --no-install-recommends "$src" || die "apt-get build-dep failed"
}

# check_deb DEB MAJOR VERSION SRC: the package's name, version, dependency and
# files (the library, the control file, every SQL script of SRC)
check_deb() {
  local deb=$1 major=$2 version=$3 src=$4 files f
  local libdir=./usr/lib/postgresql/$major/lib ext=./usr/share/postgresql/$major/extension
  local pkg=postgresql-$major-event-store
  files=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
  check "$(basename "$deb"): Package is $pkg" test "$(dpkg-deb -f "$deb" Package)" = "$pkg"
  check "Version is $version (debian/changelog)" test "$(dpkg-deb -f "$deb" Version)" = "$version"
  check "Depends on postgresql-$major" \
    grep -Eq "(^|, )postgresql-$major( |,|\$)" <<< "$(dpkg-deb -f "$deb" Depends)"
  check "${libdir#.}/event_store.so" grep -qx "$libdir/event_store.so" <<< "$files"
  check "no JIT bitcode (with_llvm = no)" lacks /bitcode/ "$files"
  check "${ext#.}/event_store.control" grep -qx "$ext/event_store.control" <<< "$files"
  for f in "$src"/event_store--*.sql; do
    check "${ext#.}/$(basename "$f")" grep -qx "$ext/$(basename "$f")" <<< "$files"
  done
  check "/usr/share/doc/$pkg/README.Debian (shared_preload_libraries)" \
    grep -qx "./usr/share/doc/$pkg/README.Debian" <<< "$files"
  check "no esctl binary in $pkg (it is event-store-tools')" lacks 'bin/esctl$' "$files"
  check "nothing in /usr/local" lacks '^\./usr/local' "$files"
}

# check_tools_deb DEB VERSION: event-store-tools: /usr/bin/esctl and its
# manual, libpq5, nothing else installed; the binary runs (--version)
check_tools_deb() {
  local deb=$1 version=$2 files x
  files=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
  check "$(basename "$deb"): Package is event-store-tools" test "$(dpkg-deb -f "$deb" Package)" = event-store-tools
  check "Version is $version (debian/changelog)" test "$(dpkg-deb -f "$deb" Version)" = "$version"
  check "Depends on libpq5 (shlibs)" grep -Eq '(^|, )libpq5( |,|$)' <<< "$(dpkg-deb -f "$deb" Depends)"
  check "/usr/bin/esctl" grep -qx ./usr/bin/esctl <<< "$files"
  check "/usr/share/doc/event-store-tools/esctl.md(.gz)" grep -Eqx './usr/share/doc/event-store-tools/esctl\.md(\.gz)?' <<< "$files"
  check "nothing in /usr/local, /usr/lib/postgresql or /usr/share/postgresql" \
    lacks '^\./usr/\(local\|lib/postgresql\|share/postgresql\)' "$files"
  x=$(mktemp -d "${TMPDIR:-/tmp}/event_store-tools.XXXXXX")
  tmpdirs+=("$x")
  dpkg-deb -x "$deb" "$x"
  check "esctl --version says $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')" \
    test "$("$x/usr/bin/esctl" --version)" = "esctl (event_store) $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')"
}

# dpkg_build SRC LOG: the binary packages of SRC, next to it
dpkg_build() (
  cd "$1" && dpkg-buildpackage -us -uc -b > "$2" 2>&1
)

cmd_build() {
  local out=${1:?usage: deb.sh build OUTDIR} major=${ES_PG_MAJOR:-15} work src version deb msg tools
  # pg_buildext builds for the majors of debian/pgversions that are
  # "supported" (/usr/share/postgresql-common/supported-versions): this one
  # only.  debian/control lists one package per such major: made anew below.
  # (pg_buildext is postgresql-server-dev-all's in bookworm, postgresql-common-dev's, which it
  # depends on, later; postgresql-server-dev-18 alone does not bring it)
  need rsync dpkg-dev debhelper libpq-dev postgresql-server-dev-all "postgresql-server-dev-$major" "postgresql-$major"
  export PG_SUPPORTED_VERSIONS=$major
  [ "$(cd "$top" && pg_buildext supported-versions)" = "$major" ] ||
    die "debian/pgversions ($(grep -v '^#' "$top/debian/pgversions" | xargs)) does not include PostgreSQL $major"
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  work=$(mktemp -d "${TMPDIR:-/tmp}/event_store-deb.XXXXXX")
  tmpdirs+=("$work")
  version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
  src=$work/postgresql-event-store-${version%-*}
  copy_tree "$src"
  msg=$(cd "$src" && pg_buildext updatecontrol 2>&1) || die "pg_buildext updatecontrol failed: $msg"
  build_deps "$src"
  es_log "dpkg-buildpackage -us -uc -b (PostgreSQL $major) in $src"
  if ! timed "dpkg-buildpackage" dpkg_build "$src" "$work/build.log"; then
    tail -n 40 "$work/build.log" >&2
    die "dpkg-buildpackage failed (the end of its log is above)"
  fi
  deb=$work/postgresql-${major}-event-store_${version}_$(dpkg --print-architecture).deb
  [ -f "$deb" ] || die "dpkg-buildpackage made no $(basename "$deb") (made: $(cd "$work" && echo ./*.deb))"
  cp "$work"/*.deb "$out/"
  es_log "copied $(cd "$work" && echo ./*.deb | sed 's|\./||g') to $out"
  check_deb "$deb" "$major" "$version" "$src"
  tools=$work/event-store-tools_${version}_$(dpkg --print-architecture).deb
  if [ -f "$tools" ]; then
    check_tools_deb "$tools" "$version"
  else
    check "event-store-tools_${version}_$(dpkg --print-architecture).deb was made" false
  fi
  case " ${DEB_BUILD_OPTIONS:-} " in
    *" nocheck "*) es_log "DEB_BUILD_OPTIONS has nocheck: no smoke test at build time" ;;
    *) check "the build's smoke test (debian/tests/smoke): a stale append refused, V0001" \
         grep -q 'NOTICE:  stale append refused with V0001' "$work/build.log" ;;
  esac
  [ "$failed" -eq 0 ] || die "$failed check(s) of $(basename "$deb") failed"
  es_log "$out/$(basename "$deb"): all checks passed"
}

# ---------------------------------------------------------------------------
# install-test DEB

# clean_tarball: sets tarball to ES_CACHE/bookworm-clean.tar, a debootstrap
# --variant=minbase bookworm, made once.  It is made in a temporary folder and
# renamed when complete: an interrupted making leaves no tarball, and is redone.
clean_tarball() {
  local tmp
  tarball=$cache/bookworm-clean.tar
  [ -f "$tarball" ] && return 0
  need debootstrap
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/bookworm-clean.XXXXXX")
  tmpdirs+=("$tmp")
  es_log "debootstrap --variant=minbase bookworm (once: kept as $tarball)"
  timed "debootstrap" debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" \
    > "$tmp/debootstrap.log" 2>&1 || { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
  # the point releases and security updates, like any Debian 12 system
  cat > "$tmp/root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/}-security bookworm-security main
EOF
  umount_below "$tmp"
  timed "tar of the clean system" tar -C "$tmp/root" -cf "$tmp/clean.tar" .
  mv -f "$tmp/clean.tar" "$tarball"
}

# fresh_chroot ROOT TARBALL: a fresh copy of the clean system in ROOT, with
# /proc, /dev and /dev/shm; no service starts in it
fresh_chroot() {
  local root=$1 tar=$2
  tar -C "$root" -xf "$tar"
  es_chroot_mount "$root"
  # the downloaded packages are kept between runs (apt checks them)
  mkdir -p "$cache/bookworm-clean-archives" "$root/var/cache/apt/archives"
  mount --bind "$cache/bookworm-clean-archives" "$root/var/cache/apt/archives"
  es_chroot_no_services "$root"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}

# apt_install ROOT DEB...: apt-get install the DEBs (paths in ROOT) and what
# they depend on, from Debian's mirror
apt_install() {
  es_chroot "$1" apt-get update -qq
  es_chroot "$1" apt-get install -y -qq --no-install-recommends "${@:2}"
}

cmd_install_test() {
  local deb=${1:?usage: deb.sh install-test DEB} pkg major work root name rc=0 tools tname expect
  [ -f "$deb" ] || die "no such file: $deb"
  deb=$(readlink -f "$deb")
  name=$(basename "$deb")
  pkg=$(dpkg-deb -f "$deb" Package)
  [[ $pkg =~ ^postgresql-([0-9]+)-event-store$ ]] || die "$name is not a postgresql-MAJOR-event-store package ($pkg)"
  major=${BASH_REMATCH[1]}
  [ "$major" = 15 ] || die "$name is for PostgreSQL $major; the clean chroot is Debian 12's (PostgreSQL 15)"
  [ "$(id -u)" -eq 0 ] || die "install-test needs root (debootstrap, chroot, mount)"
  clean_tarball
  es_log "the clean system: $tarball ($(date -r "$tarball" '+made %F %H:%M'))"
  work=$(mktemp -d "$cache/install-test.XXXXXX")
  tmpdirs+=("$work")
  root=$work/root
  mkdir "$root"
  timed "fresh chroot from $(basename "$tarball")" fresh_chroot "$root" "$tarball"
  # the package (and event-store-tools, if it is beside it) and the demo's
  # two scripts: nothing else of the source tree
  tools=$(ls "$(dirname "$deb")"/event-store-tools_"$(dpkg-deb -f "$deb" Version)"_*.deb 2>/dev/null | head -n 1 || true)
  tname=${tools:+$(basename "$tools")}
  mkdir -p "$root/es/scripts"
  cp "$deb" ${tools:+"$tools"} "$root/es/"
  cp "$top/scripts/demo.sh" "$top/scripts/lib.sh" "$root/es/scripts/"
  es_log "apt-get install /es/$name ${tname:+/es/$tname }(and PostgreSQL $major from Debian)"
  timed "apt-get update and install" apt_install "$root" "/es/$name" ${tname:+"/es/$tname"} > "$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get install $name failed"; }
  es_log "the demo (ES_DEMO_INSTALLED=1) on the packaged files"
  timed "demo" es_chroot "$root" env ES_DEMO_INSTALLED=1 ES_PG_MAJOR="$major" \
    bash /es/scripts/demo.sh > "$work/demo.log" 2>&1 || rc=$?
  expect=$(printf '%s\n' "./$name" ${tname:+"./$tname"} ./scripts ./scripts/demo.sh ./scripts/lib.sh | sort | xargs)
  check "only the packages and the demo's scripts in /es" \
    test "$(cd "$root/es" && find . -mindepth 1 | sort | xargs)" = "$expect"
  if [ -n "$tname" ]; then
    check "/usr/bin/esctl is event-store-tools' (dpkg -S)" \
      grep -qx "event-store-tools: /usr/bin/esctl" <<< "$(es_chroot "$root" dpkg -S /usr/bin/esctl 2>&1)"
    # esctl on a throwaway cluster of the packaged extension: an append,
    # then the feed read back as JSON
    es_chroot "$root" bash -c 'source /es/scripts/lib.sh && w=$(es_tempdir) && es_cluster_start "$w" 54379 2>/dev/null &&
      export PGHOST=$w/sock PGPORT=54379 PGUSER=postgres &&
      es_as_pg psql -X -q -c "CREATE EXTENSION event_store" &&
      es_as_pg esctl append tools-1 --expected-version no-stream --type Checked --data "{\"ok\": true}" &&
      es_as_pg esctl tail --json; rc=$?; es_cluster_stop "$w" 2>/dev/null; rm -rf "$w"; exit $rc' \
      > "$work/esctl.log" 2>&1 || true
    check "esctl appends and reads the feed on the packaged extension" \
      grep -q '"stream":"tools-1","version":1,"type":"Checked","data":{"ok": true}' "$work/esctl.log"
  fi
  check "no C compiler in the chroot (nothing was built there)" test ! -e "$root/usr/bin/gcc"
  check "/usr/lib/postgresql/$major/lib/event_store.so is $pkg's (dpkg -S)" \
    grep -qx "$pkg: /usr/lib/postgresql/$major/lib/event_store.so" \
    <<< "$(es_chroot "$root" dpkg -S "/usr/lib/postgresql/$major/lib/event_store.so" 2>&1)"
  check "/usr/share/postgresql/$major/extension/event_store.control is $pkg's (dpkg -S)" \
    grep -qx "$pkg: /usr/share/postgresql/$major/extension/event_store.control" \
    <<< "$(es_chroot "$root" dpkg -S "/usr/share/postgresql/$major/extension/event_store.control" 2>&1)"
  check "the demo ran to its end (exit status $rc)" test "$rc" = 0
  check "the demo used the installed extension and built nothing" \
    grep -q 'using the installed event_store' "$work/demo.log"
  check "the extension worked: order-42 read back, version 4 is OrderShipped" \
    grep -Eq '^ +[0-9]+ \| +4 \| OrderShipped' "$work/demo.log"
  check "a stale write was refused with SQLSTATE V0001" grep -qx 'SQLSTATE V0001' "$work/demo.log"
  check "the listener received a notification on es_events" \
    grep -q 'Asynchronous notification "es_events"' "$work/demo.log"
  if [ "$failed" -gt 0 ]; then
    [ -f "$work/esctl.log" ] && { es_log "esctl's output:"; cat "$work/esctl.log" >&2; }
    es_log "the demo's output:"
    cat "$work/demo.log" >&2
    die "$failed check(s) of the installed $name failed"
  fi
  timed "remove the chroot" remove_dir "$work"
  es_log "$name installs on a clean Debian 12 and runs the demo"
}

case ${1:-} in
  build) shift; cmd_build "$@" ;;
  install-test) shift; cmd_install_test "$@" ;;
  prepare) clean_tarball ;;	# the clean system only (scripts/test.sh makes it beside the rest)
  *) die "usage: bash scripts/deb.sh build OUTDIR | install-test DEB | prepare" ;;
esac
