#!/usr/bin/env bash
# Builds the native part of the Jazzer.js fuzzer (libFuzzer and its Node-API glue) and puts
# it where @jazzer.js/fuzzer loads it from: node_modules/@jazzer.js/fuzzer/build/Release.
#
# The package's own install step fetches a prebuilt binary, or else compiler-rt's sources,
# from outside the npm registry, so npm is told not to run it (package.json allowScripts).
# Instead this compiles the C++ glue that the npm package ships, with g++, against the
# libFuzzer of Debian's compiler-rt package (libclang-rt-N-dev). The package is unpacked
# into the cache rather than installed when the system lacks it, so no root is needed
# beyond what `apt-get download` needs. scripts/fuzz/native/ fills the few entry points
# that the glue expects from Jazzer's own libFuzzer fork.
#
# The result is cached under ~/.cache/tessera/jazzer/<key>/, keyed by everything it is
# built from, so only the first run on a machine compiles (about 20 s on one core).
# Prints the path of the installed addon. Set TESSERA_LIBFUZZER to use another
# libclang_rt.fuzzer_no_main archive.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
pkg="$root/node_modules/@jazzer.js/fuzzer"
native="$root/scripts/fuzz/native"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tessera/jazzer"
installed="$pkg/build/Release/jazzerjs.node"

fail() {
  echo "build-addon: $*" >&2
  exit 1
}

[ -f "$pkg/addon.cpp" ] || fail "$pkg has no C++ sources: run npm ci first"
command -v g++ >/dev/null || fail "g++ is missing (apt-get install g++)"
mkdir -p "$cache"

# One build at a time per machine: the test suite and a long run may start together.
exec 9>"$cache/.lock"
flock 9

case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64) arch=aarch64 ;;
  *) fail "no libFuzzer archive is known for $(uname -m)" ;;
esac
archive_name="libclang_rt.fuzzer_no_main-$arch.a"

newest() { sort -V | tail -n 1; }

find_libfuzzer() {
  if [ -n "${TESSERA_LIBFUZZER:-}" ]; then
    [ -f "$TESSERA_LIBFUZZER" ] || fail "TESSERA_LIBFUZZER=$TESSERA_LIBFUZZER does not exist"
    echo "$TESSERA_LIBFUZZER"
    return
  fi
  # Installed on the system, or unpacked into the cache by an earlier run.
  {
    ls -1 /usr/lib/llvm-*/lib/clang/*/lib/linux/"$archive_name" 2>/dev/null || true
    ls -1 "$cache"/compiler-rt/*/usr/lib/llvm-*/lib/clang/*/lib/linux/"$archive_name" 2>/dev/null || true
  } | newest
}

unpack_compiler_rt() {
  command -v apt-get >/dev/null || fail "libFuzzer ($archive_name) is missing and there is no apt-get to fetch it"
  local name
  name=$(apt-cache search --names-only '^libclang-rt-[0-9]+-dev$' 2>/dev/null | cut -d' ' -f1 | newest)
  if [ -z "$name" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    name=$(apt-cache search --names-only '^libclang-rt-[0-9]+-dev$' 2>/dev/null | cut -d' ' -f1 | newest)
  fi
  [ -n "$name" ] || fail "apt knows no libclang-rt-N-dev package to take libFuzzer from"
  local tmp
  tmp=$(mktemp -d)
  # apt's sandbox user cannot write into a root-owned mktemp directory.
  chmod 777 "$tmp"
  echo "build-addon: fetching $name for libFuzzer" >&2
  (cd "$tmp" && apt-get download -qq "$name" >/dev/null 2>&1) || {
    rm -rf "$tmp"
    fail "apt-get download $name failed"
  }
  mkdir -p "$cache/compiler-rt/$name"
  dpkg-deb -x "$tmp"/*.deb "$cache/compiler-rt/$name"
  rm -rf "$tmp"
}

libfuzzer=$(find_libfuzzer)
if [ -z "$libfuzzer" ]; then
  unpack_compiler_rt
  libfuzzer=$(find_libfuzzer)
  [ -n "$libfuzzer" ] || fail "the compiler-rt package holds no $archive_name"
fi

node_include="$(dirname "$(dirname "$(command -v node)")")/include/node"
[ -f "$node_include/node_api.h" ] || node_include=/usr/include/node
[ -f "$node_include/node_api.h" ] || fail "Node's headers (node_api.h) are missing (apt-get install libnode-dev, or a Node with include/)"
napi_include=$(node -p "require('node-addon-api').include_dir" 2>/dev/null) || fail "node-addon-api is missing: run npm ci"
napi_include="$root/$napi_include"
[ -f "$napi_include/napi.h" ] || napi_include=$(dirname "$(node -p "require.resolve('node-addon-api/napi.h')")")

sources=("$pkg"/*.cpp "$pkg"/shared/*.cpp "$native"/*.cpp)
key=$(
  {
    cat "${sources[@]}" "$pkg"/*.h "$pkg"/shared/*.h "$native"/*/*.h "$napi_include"/napi*.h
    sha256sum "$libfuzzer" "$node_include/node_api.h"
    g++ --version
    echo "$arch"
    cat "$root/scripts/fuzz/build-addon.sh"
  } | sha256sum | cut -c1-16
)
built="$cache/$key/jazzerjs.node"

if [ ! -f "$built" ]; then
  echo "build-addon: compiling the Jazzer.js addon against $libfuzzer" >&2
  mkdir -p "$cache/$key"
  start=$SECONDS
  g++ -std=c++17 -O2 -fPIC -shared -fexceptions -w \
    -DNAPI_VERSION=4 -DNAPI_CPP_EXCEPTIONS \
    -I"$node_include" -I"$napi_include" -I"$native" -I"$pkg" \
    "${sources[@]}" \
    -Wl,--whole-archive "$libfuzzer" -Wl,--no-whole-archive -lpthread \
    -o "$built.tmp"
  mv "$built.tmp" "$built"
  echo "build-addon: built in $((SECONDS - start)) s" >&2
fi

if ! cmp -s "$built" "$installed"; then
  mkdir -p "$(dirname "$installed")"
  cp "$built" "$installed.tmp"
  mv "$installed.tmp" "$installed"
fi
node -e "require('@jazzer.js/fuzzer')" || fail "the built addon does not load"
echo "$installed"
