/**
 * tools/gpu-backend/build.sh without a GPU or the network: fake wheels (zips with the files the real
 * ones hold), a fake onnxruntime-node, and a pins file with the fakes' digests. What is tested is the
 * CPU side: arguments, version and pin checks, wheel selection, unpacking, verification, manifest.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readGpuBackend, type GpuBackendManifest } from '../../engine/onnx/gpu-backend';

const SCRIPT = path.join(__dirname, '..', '..', 'tools', 'gpu-backend', 'build.sh');
const ORT = '1.30.0';
const NVIDIA_LIBS = [
  'libcudart.so.13',
  'libcublas.so.13',
  'libcublasLt.so.13',
  'libcurand.so.10',
  'libcufft.so.12',
  'libcudnn.so.9',
  'libnvrtc.so.13',
  'libnvJitLink.so.13',
];

let root: string;

/** Writes a zip of `files` (name -> content) with Python's zipfile, as the script reads it. */
function writeZip(file: string, files: Record<string, string>): string {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import json, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n' +
        '    for n, c in json.loads(sys.argv[2]).items(): z.writestr(n, c)',
      file,
      JSON.stringify(files),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

interface Pin {
  name: string;
  version: string;
  file: string;
  sha256: string;
}

/** The fake wheels in `dir`, one per NVIDIA library (as NVIDIA splits them), and their pins. */
function fakeWheels(dir: string, options: { omit?: string; ortVersion?: string } = {}): Pin[] {
  fs.mkdirSync(dir, { recursive: true });
  const ortVersion = options.ortVersion ?? ORT;
  const ortFile = `onnxruntime_gpu-${ortVersion}-cp311-cp311-manylinux_2_28_x86_64.whl`;
  const pins: Pin[] = [
    {
      name: 'onnxruntime-gpu',
      version: ortVersion,
      file: ortFile,
      sha256: writeZip(path.join(dir, ortFile), {
        [`onnxruntime/capi/libonnxruntime.so.${ortVersion}`]: 'core',
        'onnxruntime/capi/libonnxruntime_providers_shared.so': 'shared',
        'onnxruntime/capi/libonnxruntime_providers_cuda.so': 'cuda',
        'onnxruntime/capi/onnxruntime_pybind11_state.so': 'python only',
      }),
    },
  ];
  for (const lib of NVIDIA_LIBS.filter((l) => l !== options.omit)) {
    const name = `fake-${lib.replace(/\W/g, '-').toLowerCase()}`;
    const file = `${name.replace(/-/g, '_')}-1.0-py3-none-manylinux_2_27_x86_64.whl`;
    const sha256 = writeZip(path.join(dir, file), {
      [`nvidia/cu13/lib/${lib}`]: lib,
      'nvidia/cu13/include/header.h': 'not a library',
    });
    pins.push({ name, version: '1.0', file, sha256 });
  }
  return pins;
}

function writePins(file: string, pins: Pin[]): string {
  fs.writeFileSync(file, pins.map((p) => `${p.name} ${p.version} ${p.file} ${p.sha256}\n`).join(''));
  return file;
}

/** A node_modules with onnxruntime-node `version` (its JavaScript and binding) and onnxruntime-common. */
function fakeNodeModules(dir: string, version = ORT): string {
  const pkg = path.join(dir, 'onnxruntime-node');
  const bin = path.join(pkg, 'bin', 'napi-v6', 'linux', 'x64');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(path.join(pkg, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version }));
  fs.writeFileSync(path.join(pkg, 'dist', 'index.js'), 'module.exports = {};\n');
  fs.writeFileSync(path.join(bin, 'onnxruntime_binding.node'), 'binding');
  fs.writeFileSync(path.join(bin, 'libonnxruntime.so.1'), 'the CPU build, replaced');
  fs.mkdirSync(path.join(dir, 'onnxruntime-common'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'onnxruntime-common', 'package.json'), JSON.stringify({ version }));
  return dir;
}

function build(args: string[], env: NodeJS.ProcessEnv = {}) {
  // No nvidia-smi on PATH: the smoke test must be skipped even on a machine with a GPU.
  return spawnSync('bash', [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { PATH: `/usr/bin:/bin:${path.dirname(process.execPath)}`, HOME: root, ...env },
  });
}

describe('tools/gpu-backend/build.sh', () => {
  let wheels: string;
  let pins: string;
  let nodeModules: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-gpu-build-'));
    wheels = path.join(root, 'wheels');
    pins = writePins(path.join(root, 'pins'), fakeWheels(wheels));
    nodeModules = fakeNodeModules(path.join(root, 'node_modules'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('--dry-run lists the pinned wheels and the destination and writes nothing', () => {
    const dest = path.join(root, 'dry');
    const r = build(['--dry-run', '--dest', dest, '--node-modules', nodeModules]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ONNX Runtime 1\.30\.0 \(onnxruntime-node 1\.30\.0\), CUDA 13/);
    assert.match(
      r.stdout,
      /wheel: onnxruntime-gpu==1\.30\.0 onnxruntime_gpu-1\.30\.0-cp311.*sha256:[0-9a-f]{64} \(download from PyPI\)/,
    );
    for (const name of [
      'nvidia-cudnn-cu13',
      'nvidia-cublas',
      'nvidia-cuda-runtime',
      'nvidia-cufft',
      'nvidia-curand',
      'nvidia-cuda-nvrtc',
    ])
      assert.match(r.stdout, new RegExp(`wheel: ${name}==`));
    assert.ok(r.stdout.includes(`destination: ${dest}`));
    assert.equal(fs.existsSync(dest), false);
    const local = build([
      '--dry-run',
      '--dest',
      dest,
      '--node-modules',
      nodeModules,
      '--from-dir',
      wheels,
      '--pins',
      pins,
    ]);
    assert.equal(local.status, 0, local.stderr);
    assert.match(local.stdout, new RegExp(`\\(from ${wheels}\\)`));
  });

  test('--from-dir builds the runtime: the wheel core beside its providers, flat libraries, a manifest', () => {
    const dest = path.join(root, 'cache', 'gpu-backend', ORT);
    const r = build(['--from-dir', wheels, '--pins', pins, '--node-modules', nodeModules], {
      DRO_CACHE_DIR: path.join(root, 'cache'),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), dest);
    assert.match(r.stderr, /no GPU visible: the smoke test is skipped/);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(dest, 'manifest.json'), 'utf8'),
    ) as GpuBackendManifest & {
      smokeTest: string;
    };
    assert.equal(manifest.ortVersion, ORT);
    assert.equal(manifest.cudaMajor, 13);
    assert.equal(manifest.libDir, path.join(dest, 'lib'));
    assert.equal(manifest.packageDir, path.join(dest, 'node_modules', 'onnxruntime-node'));
    assert.equal(manifest.smokeTest, 'skipped: no GPU visible');
    const expected = fs
      .readFileSync(pins, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    assert.deepEqual(
      manifest.wheels.map((w) => [w.name, w.version, w.file, w.sha256]),
      expected,
    );
    const bin = path.join(manifest.packageDir, 'bin', 'napi-v6', 'linux', 'x64');
    assert.equal(fs.readFileSync(path.join(bin, 'libonnxruntime.so.1'), 'utf8'), 'core');
    assert.equal(fs.readFileSync(path.join(bin, 'libonnxruntime_providers_cuda.so'), 'utf8'), 'cuda');
    assert.equal(fs.readFileSync(path.join(bin, 'onnxruntime_binding.node'), 'utf8'), 'binding');
    assert.equal(fs.existsSync(path.join(bin, 'onnxruntime_pybind11_state.so')), false);
    assert.deepEqual(fs.readdirSync(manifest.libDir).sort(), [...NVIDIA_LIBS].sort());
    assert.ok(fs.existsSync(path.join(dest, 'node_modules', 'onnxruntime-common', 'package.json')));
    assert.equal(fs.existsSync(path.join(dest, 'wheels')), false, 'the wheels are not kept');
    const envSh = fs.readFileSync(path.join(dest, 'env.sh'), 'utf8');
    assert.ok(envSh.includes(`export DRO_GPU_BACKEND='${dest}'`));
    assert.ok(envSh.includes(`export LD_LIBRARY_PATH='${manifest.libDir}'`));
    // The engine reads what the script wrote.
    const read = readGpuBackend({ DRO_CACHE_DIR: path.join(root, 'cache') }, ORT);
    assert.ok(read.ok, read.ok ? '' : read.problem);

    const again = build(['--from-dir', wheels, '--pins', pins, '--node-modules', nodeModules], {
      DRO_CACHE_DIR: path.join(root, 'cache'),
    });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /already built/);
  });

  test('a wheel whose digest differs from its pin is refused and nothing is left behind', () => {
    const dir = path.join(root, 'tampered');
    const tampered = fakeWheels(dir);
    tampered[2]!.sha256 = 'f'.repeat(64);
    const dest = path.join(root, 'out-tampered');
    const r = build([
      '--from-dir',
      dir,
      '--pins',
      writePins(path.join(root, 'pins-tampered'), tampered),
      '--dest',
      dest,
      '--node-modules',
      nodeModules,
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${tampered[2]!.file} does not have the pinned sha256 f{64}`));
    assert.equal(fs.existsSync(dest), false);
    assert.deepEqual(
      fs.readdirSync(root).filter((f) => f.startsWith('.build.')),
      [],
    );
  });

  test('a missing library, a wheel not in --from-dir and mismatched versions are named', () => {
    const noCudnn = path.join(root, 'no-cudnn');
    const r = build([
      '--from-dir',
      noCudnn,
      '--pins',
      writePins(path.join(root, 'pins-no-cudnn'), fakeWheels(noCudnn, { omit: 'libcudnn.so.9' })),
      '--dest',
      path.join(root, 'o1'),
      '--node-modules',
      nodeModules,
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing: .*lib\/libcudnn\.so\.9/);

    const absent = build([
      '--from-dir',
      path.join(root, 'node_modules'),
      '--pins',
      pins,
      '--dest',
      path.join(root, 'o2'),
      '--node-modules',
      nodeModules,
    ]);
    assert.equal(absent.status, 1);
    assert.match(absent.stderr, /no onnxruntime_gpu-1\.30\.0-.*\.whl in /);

    const oldNode = build([
      '--dry-run',
      '--node-modules',
      fakeNodeModules(path.join(root, 'nm-old'), '1.29.0'),
    ]);
    assert.equal(oldNode.status, 1);
    assert.match(oldNode.stderr, /onnxruntime-node is 1\.29\.0 but this builds ONNX Runtime 1\.30\.0/);

    const otherPin = path.join(root, 'other-pin');
    const mismatched = writePins(
      path.join(root, 'pins-other'),
      fakeWheels(otherPin, { ortVersion: '1.29.0' }),
    );
    const r2 = build(['--dry-run', '--pins', mismatched, '--node-modules', nodeModules]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /the onnxruntime-gpu pin is 1\.29\.0, onnxruntime-node is 1\.30\.0/);
  });

  test('malformed arguments and pins are refused', () => {
    const unknown = build(['--fast']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown argument '--fast'/);
    const noValue = build(['--from-dir']);
    assert.equal(noValue.status, 2);
    assert.match(noValue.stderr, /--from-dir needs a value/);
    fs.writeFileSync(path.join(root, 'bad-pins'), 'onnxruntime-gpu 1.30.0 x.whl not-a-digest\n');
    const badPins = build([
      '--dry-run',
      '--pins',
      path.join(root, 'bad-pins'),
      '--node-modules',
      nodeModules,
    ]);
    assert.equal(badPins.status, 1);
    assert.match(badPins.stderr, /bad pin line/);
  });
});
