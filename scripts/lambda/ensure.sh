#!/usr/bin/env bash
# Builds AWS's Node.js runtime interface client (the npm package aws-lambda-ric) once into
# ~/.cache/tessera/lambda/, for the local Lambda service's execution environments
# (test/helpers/lambda/). Prints the client's entry point.
#
# The package compiles curl and aws-lambda-cpp from the sources it ships, then a native
# addon with node-gyp: it needs a C/C++ toolchain, cmake, autotools (installed here with apt
# when missing and we are root) and Node's headers (taken from the installed Node, since
# node-gyp could not download them here). 3.x is the line for Node 20; 4.x needs Node 22.
set -euo pipefail

version="${TESSERA_LAMBDA_RIC_VERSION:-3.3.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tessera/lambda"
dir="$cache/ric-$version"
entry="$dir/node_modules/aws-lambda-ric/bin/index.mjs"

if [ -f "$dir/.complete" ] && [ -f "$entry" ]; then
  echo "$entry"
  exit 0
fi

need=()
for tool in autoreconf:autoconf automake:automake libtoolize:libtool cmake:cmake make:make g++:g++ python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if ((${#need[@]} > 0)); then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "aws-lambda-ric needs ${need[*]} to build; install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]} (apt-get)" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; }; } >/tmp/tessera-apt-ric.log 2>&1; then
    echo "could not install ${need[*]} (see /tmp/tessera-apt-ric.log)" >&2
    exit 1
  fi
fi

node_prefix="$(dirname "$(dirname "$(command -v node)")")"
nodedir_args=()
if [ -f "$node_prefix/include/node/node.h" ]; then
  nodedir_args=(--nodedir="$node_prefix")
fi

rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
printf '{"name":"tessera-lambda-ric","private":true,"allowScripts":{"aws-lambda-ric":true}}\n' >package.json
log="$dir/build.log"
echo "building aws-lambda-ric@$version into $dir (a few minutes; log: $log)" >&2
start=$(date +%s)
if ! npm install --no-audit --no-fund --foreground-scripts "${nodedir_args[@]}" "aws-lambda-ric@$version" >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "aws-lambda-ric did not build (see $log)" >&2
  exit 1
fi
if [ ! -f "$dir/node_modules/aws-lambda-ric/dist/rapid-client.node" ]; then
  echo "aws-lambda-ric installed without its native client (install scripts not run?); see $log" >&2
  exit 1
fi
echo "built in $(($(date +%s) - start)) s" >&2
touch "$dir/.complete"
echo "$entry"
