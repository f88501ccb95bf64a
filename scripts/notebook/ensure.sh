#!/usr/bin/env bash
# Installs what executing a notebook for real needs, once, under ~/.cache/tessera/notebook/:
#
#   deno-VERSION/   Deno, whose Jupyter kernel is built in (`deno jupyter --kernel`), from the
#                   npm registry's @deno/<platform> package (the binary, no install script);
#   venv-HASH/      a Python virtualenv with Jupyter's own executor, nbclient, and
#                   jupyter_client + nbformat, from PyPI (requirements.txt beside this file);
#   jupyter/        a private Jupyter data dir holding the kernelspec `tessera-deno`. The
#                   user's own Jupyter setup (~/.local/share/jupyter) is never touched;
#   deno-dir/       DENO_DIR for the kernel: Deno's caches stay here too.
#
# Idempotent and safe to run concurrently (a lock; each part is built aside and moved into
# place whole). A second run only checks. Logs go to stderr; stdout gets KEY=value lines for
# test/helpers/notebook.ts:
#
#   TESSERA_NOTEBOOK_PYTHON  the virtualenv's python (runs scripts/notebook/execute.py)
#   TESSERA_NOTEBOOK_DENO    the deno binary
#   TESSERA_NOTEBOOK_KERNEL  the kernelspec's name
#   JUPYTER_PATH             where that kernelspec is (also used as JUPYTER_DATA_DIR)
#   DENO_DIR                 Deno's cache for the kernel
#
# Needs: node + npm, python3 (>= 3.9) with venv, flock. Network: the npm registry and PyPI.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DENO_VERSION=2.9.6
KERNEL=tessera-deno
cache=${TESSERA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}/notebook
mkdir -p "$cache"

log() { echo "notebook tools: $*" >&2; }
now() { date +%s%3N; }
since() { local ms=$(($(now) - $1)); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }
started=$(now)

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x64-glibc ;;
  Linux-aarch64 | Linux-arm64) platform=linux-arm64-glibc ;;
  Darwin-x86_64) platform=darwin-x64 ;;
  Darwin-arm64) platform=darwin-arm64 ;;
  *)
    log "no Deno package for $(uname -s) $(uname -m)"
    exit 1
    ;;
esac

# One installer at a time (test files run in parallel); flock is util-linux, on every Linux.
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

# --- Deno, from npm -------------------------------------------------------------------
deno_home=$cache/deno-$DENO_VERSION
deno=$deno_home/node_modules/@deno/$platform/deno
if [ ! -x "$deno" ] || [ ! -e "$deno_home/.complete" ]; then
  log "installing Deno $DENO_VERSION from npm (@deno/$platform)"
  t=$(now)
  rm -rf "$deno_home.partial"
  mkdir -p "$deno_home.partial"
  echo '{"private": true}' >"$deno_home.partial/package.json"
  npm install --prefix "$deno_home.partial" --no-audit --no-fund --no-save --no-package-lock --ignore-scripts \
    "@deno/$platform@$DENO_VERSION" >&2
  "$deno_home.partial/node_modules/@deno/$platform/deno" --version >&2
  touch "$deno_home.partial/.complete"
  rm -rf "$deno_home"
  mv "$deno_home.partial" "$deno_home"
  log "Deno installed in $(since "$t") s ($(du -sh "$deno_home" | cut -f1))"
fi

# --- Python: nbclient, from PyPI --------------------------------------------------------
python=${TESSERA_PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  log "$python is missing: install Python 3 (with venv)"
  exit 1
fi
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$( { cat "$here/requirements.txt"; echo "$py_version"; } | sha256sum | cut -c1-12)
venv=$cache/venv-$key
if [ ! -e "$venv/.complete" ]; then
  log "creating a Python $py_version virtualenv with nbclient (PyPI)"
  t=$(now)
  rm -rf "$venv.partial"
  if ! "$python" -m venv "$venv.partial" >&2; then
    log "'$python -m venv' failed: install Python's venv module (Debian: python3-venv)"
    exit 1
  fi
  "$venv.partial/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  "$venv.partial/bin/python" -c 'import nbclient, nbformat, jupyter_client' >&2
  touch "$venv.partial/.complete"
  rm -rf "$venv"
  mv "$venv.partial" "$venv"
  # A moved virtualenv keeps its old path in bin/ scripts, but `venv/bin/python -m ...`
  # (all that is used here) resolves by the interpreter's own location.
  log "virtualenv ready in $(since "$t") s ($(du -sh "$venv" | cut -f1))"
fi

# --- The kernelspec, in a private Jupyter data dir --------------------------------------
jupyter=$cache/jupyter
spec=$jupyter/kernels/$KERNEL
mkdir -p "$spec"
want=$(
  cat <<EOF
{
  "argv": ["$deno", "jupyter", "--kernel", "--conn", "{connection_file}"],
  "display_name": "Deno $DENO_VERSION (Tessera)",
  "language": "typescript",
  "interrupt_mode": "signal",
  "env": { "DENO_NO_UPDATE_CHECK": "1" }
}
EOF
)
if [ "$(cat "$spec/kernel.json" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" >"$spec/kernel.json.partial"
  mv "$spec/kernel.json.partial" "$spec/kernel.json"
  log "kernelspec $KERNEL registered in $jupyter"
fi
mkdir -p "$cache/deno-dir"

exec 9>&-
log "ready in $(since "$started") s"

echo "TESSERA_NOTEBOOK_PYTHON=$venv/bin/python"
echo "TESSERA_NOTEBOOK_DENO=$deno"
echo "TESSERA_NOTEBOOK_KERNEL=$KERNEL"
echo "JUPYTER_PATH=$jupyter"
echo "DENO_DIR=$cache/deno-dir"
