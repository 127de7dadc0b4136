#!/usr/bin/env bash
# Assembles the GPU runtime of ONNX inference (workers.inferenceRuntime "onnx-cuda") in a cache
# directory outside the repository, from PyPI wheels only: onnxruntime-node's own install step fetches
# the CUDA provider from NuGet, and @tensorflow/tfjs-node-gpu's fetches libtensorflow from storage
# outside the package registries. Here libonnxruntime and its CUDA execution provider come from the
# onnxruntime-gpu wheel of the same version as the repository's onnxruntime-node, and the libraries
# the provider needs from NVIDIA's wheels (cuDNN, cuBLAS, the CUDA runtime, cuFFT, cuRAND, NVRTC).
#
# Usage: tools/gpu-backend/build.sh [--force] [--dry-run] [--from-dir DIR] [--dest DIR]
#                                   [--pins FILE] [--node-modules DIR] [--skip-smoke-test]
#   --force            rebuild even if DEST holds a finished build
#   --dry-run          print what would be fetched and built, change nothing
#   --from-dir DIR     take the wheels from DIR instead of downloading them
#   --dest DIR         build into DIR (default: $DRO_CACHE_DIR/gpu-backend/<ONNX Runtime version>)
#   --pins FILE        wheels to use, one "name version file sha256" a line (default: the pins below)
#   --node-modules DIR where onnxruntime-node and onnxruntime-common are (default: the repository's)
#   --skip-smoke-test  do not run x + 1 on the GPU even when one is visible
#   Prints DEST. Use the build with: source DEST/env.sh (sets DRO_GPU_BACKEND and LD_LIBRARY_PATH).
# Environment: DRO_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/dro-pipeline).
# Needs: Linux x86_64, node, python3 with pip; an NVIDIA driver for CUDA 13 (R580 or newer) to run.
# About 3 GB of disk while building.
set -euo pipefail

ORT_VERSION=1.30.0 # must equal the repository's onnxruntime-node version
CUDA_MAJOR=13      # the CUDA the onnxruntime-gpu 1.30 wheel on PyPI is built against
# Wheels, fixed so a build is reproducible: name, version, file, sha256.
DEFAULT_PINS="
onnxruntime-gpu 1.30.0 onnxruntime_gpu-1.30.0-cp311-cp311-manylinux_2_28_x86_64.whl 4fbf0c5d7b5fb99266c2e8a802e3e64af68bdc383e0f3c7349b985f1087eedaa
nvidia-cuda-runtime 13.5.37 nvidia_cuda_runtime-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl df2b79a8852f10d1fef8c848489c49eebb5754051bf870202a862831412b179d
nvidia-cublas 13.10.0.20 nvidia_cublas-13.10.0.20-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84
nvidia-cudnn-cu13 9.28.1.4 nvidia_cudnn_cu13-9.28.1.4-py3-none-manylinux_2_27_x86_64.whl a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec
nvidia-cufft 12.5.0.14 nvidia_cufft-12.5.0.14-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl b8be26837a5abad2b5b74f3e92dd29f622a42934b355be0961a48712cbba23ad
nvidia-curand 10.4.5.25 nvidia_curand-10.4.5.25-py3-none-manylinux_2_27_x86_64.whl 22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529
nvidia-cuda-nvrtc 13.5.37 nvidia_cuda_nvrtc-13.5.37-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 86b4d68058807988b7d9af5b44917a0601e9c337f35ccd657bfb3c759ff8d8bc
nvidia-nvjitlink 13.5.37 nvidia_nvjitlink-13.5.37-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 280d7cb9649704145f074b8dbde500de04ce02d0872e066e20a83c17bcaa93eb
"
# What the CUDA provider links against or opens (libcuda.so.1 comes with the driver, not a wheel).
REQUIRED_LIBS="libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcufft.so.12 libcudnn.so.9 libnvrtc.so.13 libnvJitLink.so.13"
ORT_FILES="libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${DRO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dro-pipeline}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

force=0 dry_run=0 smoke=1 from_dir="" dest="" pins_file="" node_modules=$repo/node_modules
need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "build.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --force) force=1 ;;
    --dry-run) dry_run=1 ;;
    --skip-smoke-test) smoke=0 ;;
    --from-dir) need_value "$@"; from_dir=$2; shift ;;
    --dest) need_value "$@"; dest=$2; shift ;;
    --pins) need_value "$@"; pins_file=$2; shift ;;
    --node-modules) need_value "$@"; node_modules=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
abs() { (cd "$1" && pwd); }
[[ -z $from_dir || -d $from_dir ]] || die "--from-dir $from_dir is not a directory"
[[ -z $from_dir ]] || from_dir=$(abs "$from_dir")
dest=${dest:-$cache_root/gpu-backend/$ORT_VERSION}
[[ $dest == /* ]] || dest=$PWD/$dest

# The provider .so must come from the same ONNX Runtime release as the libonnxruntime it plugs into,
# and the binding of onnxruntime-node calls that libonnxruntime's versioned C API.
ort_node=$node_modules/onnxruntime-node
ort_common=$node_modules/onnxruntime-common
[[ -f $ort_node/package.json ]] || die "no onnxruntime-node in $node_modules (run npm ci)"
[[ -f $ort_common/package.json ]] || die "no onnxruntime-common in $node_modules (run npm ci)"
installed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$ort_node/package.json")
[[ $installed == "$ORT_VERSION" ]] ||
  die "onnxruntime-node is $installed but this builds ONNX Runtime $ORT_VERSION; update ORT_VERSION and the onnxruntime-gpu pin together"

pins=$DEFAULT_PINS
if [[ -n $pins_file ]]; then
  [[ -f $pins_file ]] || die "--pins $pins_file: no such file"
  pins=$(cat "$pins_file")
fi
names=() versions=() files=() shas=()
while read -r name version file sha extra; do
  [[ -z $name || $name == \#* ]] && continue
  [[ -n $sha && -z ${extra:-} && $sha =~ ^[0-9a-f]{64}$ ]] ||
    die "bad pin line '$name $version $file $sha${extra:+ $extra}' (want: name version file sha256)"
  names+=("$name") versions+=("$version") files+=("$file") shas+=("$sha")
done <<< "$pins"
ort_index=-1
for i in "${!names[@]}"; do [[ ${names[$i]} == onnxruntime-gpu ]] && ort_index=$i; done
[[ $ort_index -ge 0 ]] || die "the pins name no onnxruntime-gpu wheel"
[[ ${versions[$ort_index]} == "$ORT_VERSION" ]] ||
  die "the onnxruntime-gpu pin is ${versions[$ort_index]}, onnxruntime-node is $ORT_VERSION; they must match"

if [[ $dry_run == 1 ]]; then
  echo "ONNX Runtime $ORT_VERSION (onnxruntime-node $installed), CUDA $CUDA_MAJOR"
  echo "destination: $dest$([[ -f $dest/manifest.json && $force == 0 ]] && echo ' (already built; --force rebuilds)')"
  for i in "${!names[@]}"; do
    if [[ -n $from_dir ]]; then
      where=$([[ -f $from_dir/${files[$i]} ]] && echo "from $from_dir" || echo "MISSING from $from_dir")
    else
      where="download from PyPI"
    fi
    echo "wheel: ${names[$i]}==${versions[$i]} ${files[$i]} sha256:${shas[$i]} ($where)"
  done
  exit 0
fi

# Every file the manifest promises, and every library the CUDA provider needs, in directory $1.
verify_tree() {
  local root=$1 bin=$1/node_modules/onnxruntime-node/bin/napi-v6/linux/x64 missing=()
  for f in onnxruntime_binding.node $ORT_FILES; do [[ -f $bin/$f ]] || missing+=("$bin/$f"); done
  for f in $REQUIRED_LIBS; do [[ -f $root/lib/$f ]] || missing+=("$root/lib/$f"); done
  for f in node_modules/onnxruntime-node/dist/index.js node_modules/onnxruntime-common/package.json; do
    [[ -f $root/$f ]] || missing+=("$root/$f")
  done
  [[ ${#missing[@]} == 0 ]] || { log "missing: ${missing[*]}"; return 1; }
  # The dynamic loader's view, where the files are real ELF objects: only the driver's libcuda may be
  # absent on a machine without a GPU.
  if [[ $(head -c 4 "$bin/libonnxruntime_providers_cuda.so" | od -An -c | tr -d ' ') == '177ELF' ]]; then
    local unresolved
    unresolved=$(LD_LIBRARY_PATH=$root/lib ldd "$bin/libonnxruntime_providers_cuda.so" 2>&1 |
      awk '/not found/ {print $1}' | grep -v '^libcuda\.so\.1$' || true)
    [[ -z $unresolved ]] || { log "the CUDA provider cannot resolve: $unresolved"; return 1; }
  fi
}

if [[ $force == 0 && -f $dest/manifest.json ]]; then
  verify_tree "$dest" || die "the build in $dest is incomplete; rerun with --force"
  log "already built"
  echo "$dest"
  exit 0
fi

[[ $(uname -sm) == "Linux x86_64" ]] || die "only Linux x86_64 is supported (the wheels are manylinux x86_64)"
for tool in node python3; do command -v "$tool" > /dev/null || die "'$tool' not found"; done

mkdir -p "$(dirname "$dest")"
stage=$(mktemp -d "$(dirname "$dest")/.build.XXXXXX")
chmod 755 "$stage" # mktemp makes it private; the cache is meant to be shared by the users of a machine
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/wheels"

for i in "${!names[@]}"; do
  file=${files[$i]}
  if [[ -n $from_dir ]]; then
    [[ -f $from_dir/$file ]] || die "no $file in $from_dir"
    ln -s "$from_dir/$file" "$stage/wheels/$file"
  else
    python3 -m pip --version > /dev/null 2>&1 || die "python3 has no pip"
    log "downloading ${names[$i]}==${versions[$i]}"
    # Platform and Python are fixed so the pinned file comes down whatever python3 is installed.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
      --abi cp311 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 \
      --platform manylinux1_x86_64 -d "$stage/wheels" "${names[$i]}==${versions[$i]}"
    [[ -f $stage/wheels/$file ]] || die "pip did not fetch $file for ${names[$i]}==${versions[$i]}"
  fi
  echo "${shas[$i]}  $stage/wheels/$file" | sha256sum --check --quiet 2> /dev/null ||
    die "$file does not have the pinned sha256 ${shas[$i]}"
done

log "unpacking"
pkg=$stage/node_modules/onnxruntime-node
bin=$pkg/bin/napi-v6/linux/x64
mkdir -p "$bin" "$stage/lib" "$stage/node_modules"
# The JavaScript and the N-API binding of the repository's onnxruntime-node; its libonnxruntime is
# replaced by the wheel's, built in the same release as the provider next to it.
cp -R "$ort_node/package.json" "$ort_node/dist" "$pkg/"
cp "$ort_node/bin/napi-v6/linux/x64/onnxruntime_binding.node" "$bin/"
cp -R "$ort_common" "$stage/node_modules/onnxruntime-common"
ort_wheel=$stage/wheels/${files[$ort_index]}
nvidia_wheels=()
for i in "${!names[@]}"; do [[ $i == "$ort_index" ]] || nvidia_wheels+=("$stage/wheels/${files[$i]}"); done
python3 - "$ort_wheel" "$bin" "$ORT_VERSION" "$stage/lib" "${nvidia_wheels[@]}" << 'EOF'
import os, shutil, sys, zipfile
ort_wheel, bin_dir, version, lib_dir, nvidia = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
wanted = {
    f"onnxruntime/capi/libonnxruntime.so.{version}": "libonnxruntime.so.1",
    "onnxruntime/capi/libonnxruntime_providers_shared.so": "libonnxruntime_providers_shared.so",
    "onnxruntime/capi/libonnxruntime_providers_cuda.so": "libonnxruntime_providers_cuda.so",
}
def extract(z, name, out):
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(out, 0o755)
with zipfile.ZipFile(ort_wheel) as z:
    names = set(z.namelist())
    for name, target in wanted.items():
        if name not in names:
            sys.exit(f"build.sh: {os.path.basename(ort_wheel)} has no {name}")
        extract(z, name, os.path.join(bin_dir, target))
# NVIDIA's wheels keep their libraries under nvidia/<component>/lib (or nvidia/cu13/lib); one flat
# directory keeps LD_LIBRARY_PATH to a single entry.
for wheel in nvidia:
    with zipfile.ZipFile(wheel) as z:
        found = [n for n in z.namelist() if n.startswith("nvidia/") and "/lib/" in n and ".so" in os.path.basename(n)]
        if not found:
            sys.exit(f"build.sh: {os.path.basename(wheel)} holds no library under nvidia/*/lib")
        for name in found:
            extract(z, name, os.path.join(lib_dir, os.path.basename(name)))
EOF

log "verifying"
verify_tree "$stage" || die "the unpacked runtime is incomplete"

smoke_result="skipped: --skip-smoke-test"
if [[ $smoke == 1 ]]; then
  if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
    log "smoke test: x + 1 on the CUDA execution provider"
    LD_LIBRARY_PATH=$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
      node --import tsx "$here/smoke.ts" "$pkg" >&2 || die "the CUDA execution provider does not load or compute"
    smoke_result=passed
  else
    smoke_result="skipped: no GPU visible"
    log "no GPU visible: the smoke test is skipped (dro doctor runs it where a GPU is)"
  fi
fi

rm -rf "$stage/wheels"
# Paths in the manifest and env.sh are the final ones; nothing in the tree records where it was built.
wheel_lines=$(for i in "${!names[@]}"; do printf '%s %s %s %s\n' "${names[$i]}" "${versions[$i]}" "${files[$i]}" "${shas[$i]}"; done)
python3 - "$stage/manifest.json" "$dest" "$ORT_VERSION" "$CUDA_MAJOR" "$smoke_result" "$wheel_lines" << 'EOF'
import json, sys
out, dest, version, cuda, smoke, lines = sys.argv[1:7]
wheels = [dict(zip(("name", "version", "file", "sha256"), line.split())) for line in lines.splitlines() if line.strip()]
manifest = {
    "format": 1,
    "ortVersion": version,
    "cudaMajor": int(cuda),
    "packageDir": f"{dest}/node_modules/onnxruntime-node",
    "libDir": f"{dest}/lib",
    "smokeTest": smoke,
    "wheels": wheels,
}
with open(out, "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
EOF
cat > "$stage/env.sh" << EOF
# Source this before dro run / dro worker to use the GPU runtime built in $dest.
export DRO_GPU_BACKEND='$dest'
export LD_LIBRARY_PATH='$dest/lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
EOF
rm -rf "$dest"
mv "$stage" "$dest"
trap - EXIT
log "done; use it with: source $dest/env.sh (then set workers.inferenceRuntime \"onnx-cuda\")"
echo "$dest"
