#!/usr/bin/env bash
# Assembles the native TensorFlow CPU backend (@tensorflow/tfjs-node) in a cache directory outside the
# repository, without the package's install step: that step downloads libtensorflow and a prebuilt
# addon from storage outside the package registries. Here the TensorFlow C library comes from the
# pinned tensorflow-cpu wheel on PyPI (its libtensorflow_cc.so.2 exports the C and eager C APIs that
# the addon calls) and the addon is compiled locally with node-gyp against it.
#
# Usage: tools/native-backend/build.sh [--force]
#   Prints the directory to put in DRO_TFJS_NODE_PATH. Reuses a finished build unless --force.
# Environment: DRO_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/dro-pipeline),
#   NODEDIR (a prefix holding include/node/node_api.h; default: the running node's prefix).
# Needs: Linux x86_64, node + npm, python3 with pip, g++, make; about 1.2 GB of disk while building.
set -euo pipefail

TFJS_NODE_VERSION=4.22.0 # must equal the repository's @tensorflow/tfjs-core version
TF_VERSION=2.18.1
TF_WHEEL=tensorflow_cpu-${TF_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
TF_WHEEL_SHA256=810c75d7149d2da0cb2092187817b0dcabb80728ca9f9cf3a61f3f42fadd1298

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${DRO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dro-pipeline}
dest=$cache_root/tfjs-node-$TFJS_NODE_VERSION-tf$TF_VERSION
pkg_rel=node_modules/@tensorflow/tfjs-node

force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (expected --force)" >&2; exit 2 ;;
  esac
done

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

# Loads the package from $1 and checks a convolution and its input gradient against the pure-JS cpu
# backend of the same tfjs copy, so a broken library fails here and not in the middle of a training run.
smoke_test() {
  # shellcheck disable=SC2016 # JavaScript template strings, not shell expansions
  TF_CPP_MIN_LOG_LEVEL=2 node -e '
    const tf = require(process.argv[1]);
    (async () => {
      if (tf.getBackend() !== "tensorflow") throw new Error("backend is " + tf.getBackend());
      const version = tf.backend().binding.TF_Version;
      const run = () => tf.tidy(() => {
        const x = tf.randomUniform([2, 8, 8, 3], -1, 1, "float32", 7);
        const w = tf.randomUniform([3, 3, 3, 4], -1, 1, "float32", 8);
        const y = tf.conv2d(x, w, 1, "same");
        const g = tf.grad((v) => tf.conv2d(v, w, 1, "same").square().sum())(x);
        return [y.dataSync(), g.dataSync()];
      });
      const native = run();
      tf.env().set("PROD", true); // no advice to install the node backend from the cpu backend
      await tf.setBackend("cpu");
      const reference = run();
      for (let k = 0; k < 2; k++)
        for (let i = 0; i < native[k].length; i++)
          if (Math.abs(native[k][i] - reference[k][i]) > 1e-3 * (1 + Math.abs(reference[k][i])))
            throw new Error(`output ${k} differs from the cpu backend at ${i}`);
      console.error(`smoke test: TensorFlow ${version} conv2d and its gradient match the cpu backend`);
    })().catch((e) => { console.error(e); process.exit(1); });
  ' "$1/$pkg_rel"
}

if [[ $force == 0 && -f $dest/.complete ]]; then
  smoke_test "$dest" || die "the build in $dest fails its smoke test; rerun with --force"
  echo "$dest/$pkg_rel"
  exit 0
fi

[[ $(uname -sm) == "Linux x86_64" ]] || die "only Linux x86_64 is supported (the wheel is manylinux x86_64)"
for tool in node npm python3 g++ make; do
  command -v "$tool" > /dev/null || die "'$tool' not found"
done
python3 -m pip --version > /dev/null 2>&1 || die "python3 has no pip"
core_version=$(node -p 'require(process.argv[1] + "/package.json").version' \
  "$here/../../node_modules/@tensorflow/tfjs-core" 2> /dev/null || true)
if [[ -n $core_version && $core_version != "$TFJS_NODE_VERSION" ]]; then
  die "the repository has @tensorflow/tfjs-core $core_version but this builds tfjs-node $TFJS_NODE_VERSION; update TFJS_NODE_VERSION and package.json here together"
fi
nodedir=${NODEDIR:-$(node -p 'require("path").resolve(process.execPath, "../..")')}
[[ -f $nodedir/include/node/node_api.h && -f $nodedir/include/node/common.gypi ]] ||
  die "no Node headers under $nodedir/include/node (install them, e.g. Debian's libnode-dev, and set NODEDIR=/usr)"

mkdir -p "$cache_root"
stage=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$stage"' EXIT

log "downloading $TF_WHEEL"
# Platform and Python version are fixed so the same wheel comes down whatever python3 is installed.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --abi cp311 --platform manylinux2014_x86_64 -d "$stage/wheel" "tensorflow-cpu==$TF_VERSION"
echo "$TF_WHEEL_SHA256  $stage/wheel/$TF_WHEEL" | sha256sum --check --quiet ||
  die "$TF_WHEEL does not have the pinned sha256"

log "installing @tensorflow/tfjs-node $TFJS_NODE_VERSION without its install script"
cp "$here/package.json" "$here/package-lock.json" "$stage/"
(cd "$stage" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
pkg=$stage/$pkg_rel

log "extracting libtensorflow and the C API headers"
python3 - "$stage/wheel/$TF_WHEEL" "$pkg/deps" << 'EOF'
import os, shutil, sys, zipfile
wheel, deps = sys.argv[1], sys.argv[2]
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
# The headers c_api.h and eager/c_api.h include, transitively.
header_dirs = ("tensorflow/include/tensorflow/c/", "tensorflow/include/tensorflow/core/platform/",
               "tensorflow/include/tsl/platform/", "tensorflow/include/xla/tsl/c/")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name in libs:
            out = os.path.join(deps, "lib", os.path.basename(name))
        elif name.startswith(header_dirs) and name.endswith(".h"):
            out = os.path.join(deps, "include", name[len("tensorflow/include/"):])
        else:
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(name) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
# binding.gyp links -ltensorflow -ltensorflow_framework; the wheel's C API library has another name.
ln -s libtensorflow_cc.so.2 "$pkg/deps/lib/libtensorflow.so"
ln -s libtensorflow_framework.so.2 "$pkg/deps/lib/libtensorflow_framework.so"

log "compiling the addon against TensorFlow $TF_VERSION (Node headers from $nodedir)"
# 'install --build-from-source' builds only the Node-API version this node uses; the binding finds the
# libraries through its rpath $ORIGIN/../../deps/lib, so the tree can move.
(cd "$pkg" && nice -n 10 ../../.bin/node-pre-gyp install --build-from-source --nodedir="$nodedir" --loglevel=warn)
rm -rf "$pkg"/build "$pkg"/build-tmp-*

log "smoke test"
smoke_test "$stage"

rm -rf "$stage/wheel"
touch "$stage/.complete"
rm -rf "$dest"
mv "$stage" "$dest"
trap - EXIT
log "done; use it with: export DRO_TFJS_NODE_PATH=$dest/$pkg_rel"
echo "$dest/$pkg_rel"
