/**
 * Generated hostile inputs for `dro validate`: configs, model bundles, safetensors files, images,
 * caption folders and Pick-a-Pic shards. Each case writes its files into its own directory and
 * names what the output must contain: the file or field, and the problem.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { worldTokenizer } from '../../engine/world/world-text';
import { encodePng } from '../../engine/data/image-codec';
import { writePickapicParquet, type PickapicWriteRow } from '../../engine/data/pickapic';
import { MODEL_FORMAT } from '../../engine/io/model-bundle';
import { serializeSafetensors, type TensorToWrite } from '../../engine/io/safetensors';
import { demoTextEncoderConfig, textEncoderParamSpecs } from '../../engine/models/text-encoder';
import { DEMO_UNET, SD15_UNET, type UNetConfig } from '../../engine/models/unet-config';
import { unetParamSpecs } from '../../engine/models/unet-params';

export interface HostileCase {
  name: string;
  /** Writes the case's files into `dir`; returns the config file to validate (relative to dir). */
  setup: (dir: string) => Promise<string> | string;
  /** Every pattern must match the command's output. */
  expect: RegExp[];
}

const json = (dir: string, name: string, value: unknown): string => {
  fs.writeFileSync(path.join(dir, name), JSON.stringify(value));
  return name;
};

/** A config file holding `value`. */
const config =
  (value: unknown) =>
  (dir: string): string =>
    json(dir, 'config.json', value);

// ---- model bundles -----------------------------------------------------------------------------

const tokenizer = worldTokenizer();
const TEXT = demoTextEncoderConfig(
  tokenizer.vocabSize,
  tokenizer.config.maxLength,
  DEMO_UNET.cross_attention_dim,
);

interface BundleParts {
  metadata: Record<string, string>;
  tensors: Map<string, TensorToWrite>;
}

/** A well-formed demo bundle (zero weights) built from the specs alone, without TF.js. */
function demoBundle(unet: UNetConfig = DEMO_UNET): BundleParts {
  const tensors = new Map<string, TensorToWrite>();
  const add = (prefix: string, specs: { name: string; shape: number[] }[]) => {
    for (const s of specs)
      tensors.set(prefix + s.name, {
        shape: s.shape,
        data: new Float32Array(s.shape.reduce((a, d) => a * d, 1)),
      });
  };
  add('unet/', unetParamSpecs(unet));
  add('text_encoder/', textEncoderParamSpecs(TEXT));
  return {
    tensors,
    metadata: {
      format: MODEL_FORMAT,
      unet_config: JSON.stringify(unet),
      text_encoder_config: JSON.stringify(TEXT),
      tokenizer: JSON.stringify(tokenizer.config),
    },
  };
}

function writeBundle(dir: string, name: string, parts: BundleParts): string {
  fs.writeFileSync(path.join(dir, name), serializeSafetensors(parts.tensors, { metadata: parts.metadata }));
  return name;
}

/** A config importing `bundle` as its base model (world data, so nothing else is read). */
function bundleConfig(dir: string, bundle: string, extra: Record<string, unknown> = {}): string {
  return json(dir, 'config.json', { model: { unet: 'demo', baseCheckpoint: bundle }, ...extra });
}

/** A bundle case: `mutate` edits a valid demo bundle before it is written. */
function bundleCase(name: string, mutate: (b: BundleParts) => void, expect: RegExp[]): HostileCase {
  return {
    name: `bundle: ${name}`,
    setup: (dir) => {
      const b = demoBundle();
      mutate(b);
      return bundleConfig(dir, writeBundle(dir, 'model.safetensors', b));
    },
    expect: [/model\.baseCheckpoint/, ...expect],
  };
}

/** Raw bytes as the base checkpoint. */
function rawCheckpointCase(name: string, bytes: () => Uint8Array, expect: RegExp[]): HostileCase {
  return {
    name: `safetensors: ${name}`,
    setup: (dir) => {
      fs.writeFileSync(path.join(dir, 'model.safetensors'), bytes());
      return bundleConfig(dir, 'model.safetensors');
    },
    expect: [/model\.baseCheckpoint/, /model\.safetensors/, ...expect],
  };
}

/** 8-byte little-endian header length + header text + data. */
function safetensorsBytes(header: string, data = new Uint8Array(0), declared?: bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

// ---- images --------------------------------------------------------------------------------------

function image(side: number, seed = 1): Uint8Array {
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 256;
  return encodePng({ width: side, height: side, data });
}

/** A valid 16x16 PNG whose IHDR is rewritten to claim `w` x `h` (CRC left stale). */
function pngClaiming(w: number, h: number): Uint8Array {
  const png = image(16);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  view.setUint32(16, w);
  view.setUint32(20, h);
  return png;
}

/** The smallest JPEG prefix with a frame header claiming `w` x `h`. */
function jpegClaiming(w: number, h: number): Uint8Array {
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    h >> 8,
    h & 0xff,
    w >> 8,
    w & 0xff,
    3,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
    0xff,
    0xd9,
  ]);
}

/** A caption folder case: `files` are written into `data/`; the base model is a valid bundle. */
function folderCase(
  name: string,
  files: Record<string, Uint8Array | string> | null,
  expect: RegExp[],
  extra: Record<string, unknown> = {},
): HostileCase {
  return {
    name: `folder: ${name}`,
    setup: (dir) => {
      if (files) {
        fs.mkdirSync(path.join(dir, 'data'));
        for (const [f, content] of Object.entries(files))
          fs.writeFileSync(path.join(dir, 'data', f), content);
      }
      writeBundle(dir, 'model.safetensors', demoBundle());
      return json(dir, 'config.json', {
        model: { unet: 'demo', baseCheckpoint: 'model.safetensors' },
        data: { source: 'folder', paths: ['data'] },
        ranking: { rewardModel: 'detector', topK: 1 },
        ...extra,
      });
    },
    expect: [/data\.paths\[0\]|ranking\.topK/, ...expect],
  };
}

// ---- Pick-a-Pic shards -----------------------------------------------------------------------------

function goodRow(i: number, over: Partial<PickapicWriteRow> = {}): PickapicWriteRow {
  return {
    caption: `a red circle ${i}`,
    image_0_uid: `a${i}`,
    image_1_uid: `b${i}`,
    jpg_0: image(16, i),
    jpg_1: image(16, i + 1),
    label_0: 1,
    label_1: 0,
    user_id: i,
    ranking_id: i,
    ...over,
  };
}

/** A shard case: `write` creates `data/shard.parquet` (or whatever `data.paths[0]` names). */
function shardCase(
  name: string,
  write: (file: string) => Promise<void> | void,
  expect: RegExp[],
  extra: Record<string, unknown> = {},
): HostileCase {
  return {
    name: `pickapic: ${name}`,
    setup: async (dir) => {
      fs.mkdirSync(path.join(dir, 'data'));
      await write(path.join(dir, 'data', 'shard.parquet'));
      writeBundle(dir, 'model.safetensors', demoBundle());
      return json(dir, 'config.json', {
        model: { unet: 'demo', baseCheckpoint: 'model.safetensors' },
        data: { source: 'pickapic', paths: ['data/shard.parquet'] },
        ranking: { rewardModel: 'detector', topK: 2 },
        ...extra,
      });
    },
    expect: [/data\.paths\[0\]|ranking\.topK/, ...expect],
  };
}

const rowsShard = (rows: PickapicWriteRow[]) => (file: string) =>
  writePickapicParquet(file, rows, { validate: false });

/** A shard whose columns are given directly (wrong types). */
function columnsShard(override: Record<string, { data: unknown[]; type: string }>) {
  return (file: string) => {
    const r = goodRow(0);
    const base: Record<string, { data: unknown[]; type: string }> = {
      caption: { data: [r.caption], type: 'STRING' },
      image_0_uid: { data: [r.image_0_uid], type: 'STRING' },
      image_1_uid: { data: [r.image_1_uid], type: 'STRING' },
      jpg_0: { data: [r.jpg_0], type: 'BYTE_ARRAY' },
      jpg_1: { data: [r.jpg_1], type: 'BYTE_ARRAY' },
      label_0: { data: [1], type: 'DOUBLE' },
      label_1: { data: [0], type: 'DOUBLE' },
      user_id: { data: [1n], type: 'INT64' },
      ranking_id: { data: [1n], type: 'INT64' },
      ...override,
    };
    const columnData = Object.entries(base).map(([name, c]) => ({ name, ...c }));
    fs.writeFileSync(
      file,
      new Uint8Array(parquetWriteBuffer({ columnData } as Parameters<typeof parquetWriteBuffer>[0])),
    );
  };
}

// ---- the cases -------------------------------------------------------------------------------------

const big = (field: string) => new RegExp(`\\$\\.${field.replace(/\./g, '\\.')}: Too big`);

export const HOSTILE_CASES: HostileCase[] = [
  // Config files themselves.
  {
    name: 'config: not JSON',
    setup: (d) => (fs.writeFileSync(path.join(d, 'c.json'), '{"name": '), 'c.json'),
    expect: [/c\.json/, /not valid JSON/],
  },
  {
    name: 'config: empty file',
    setup: (d) => (fs.writeFileSync(path.join(d, 'c.json'), ''), 'c.json'),
    expect: [/c\.json/, /not valid JSON/],
  },
  {
    name: 'config: top-level array',
    setup: config([1, 2]),
    expect: [/config\.json/, /\$: .*expected object/i],
  },
  { name: 'config: missing file', setup: () => 'nope.json', expect: [/nope\.json/, /no such file/] },
  {
    name: 'config: a directory',
    setup: (d) => (fs.mkdirSync(path.join(d, 'dir.json')), 'dir.json'),
    expect: [/dir\.json/, /is a directory/],
  },
  {
    name: 'config: over 16 MiB',
    setup: (d) => (fs.writeFileSync(path.join(d, 'c.json'), ' '.repeat(17 * 1024 * 1024) + '{}'), 'c.json'),
    expect: [/c\.json/, /at most 16777216/],
  },
  {
    // A device reports size 0: only a bound on the bytes read stops it.
    name: 'config: /dev/zero',
    setup: () => '/dev/zero',
    expect: [/\/dev\/zero/, /more than 16777216 bytes; a config may have at most 16777216/],
  },
  {
    // Opening a FIFO that nobody writes to blocks a plain read forever.
    name: 'config: a FIFO with no writer',
    setup: (d) => (execFileSync('mkfifo', [path.join(d, 'fifo.json')]), 'fifo.json'),
    expect: [/fifo\.json/, /not valid JSON/],
  },
  {
    name: 'config: escape sequence in a key',
    setup: config({ '\u001b[2Jclear': 1 }),
    expect: [/unknown key\(s\) '\\u001b\[2Jclear'/],
  },
  {
    name: 'config: deeply nested value',
    setup: (d) => (
      fs.writeFileSync(path.join(d, 'c.json'), `{"x": ${'['.repeat(100000)}${']'.repeat(100000)}}`),
      'c.json'
    ),
    expect: [/unknown key\(s\) 'x'/],
  },
  // Sizes without bound.
  {
    name: 'size: data.prompts 1e15',
    setup: config({ data: { prompts: 1e15 } }),
    expect: [big('data.prompts')],
  },
  {
    name: 'size: pretrain.corpusSize 1e12',
    setup: config({ pretrain: { corpusSize: 1e12 } }),
    expect: [big('pretrain.corpusSize')],
  },
  {
    name: 'size: pretrain.batchSize 1e9',
    setup: config({ pretrain: { batchSize: 1e9 } }),
    expect: [big('pretrain.batchSize')],
  },
  {
    name: 'size: workers.heartbeatSeconds 1e308',
    setup: config({ workers: { heartbeatSeconds: 1e308 } }),
    expect: [big('workers.heartbeatSeconds')],
  },
  {
    name: 'size: dro.batchSize 1e6',
    setup: config({ dro: { batchSize: 1e6 } }),
    expect: [big('dro.batchSize')],
  },
  {
    name: 'size: dro.samplerSteps 1e9',
    setup: config({ dro: { samplerSteps: 1e9 } }),
    expect: [big('dro.samplerSteps')],
  },
  {
    name: 'size: ranking.topK 1e12',
    setup: config({ ranking: { topK: 1e12 } }),
    expect: [big('ranking.topK')],
  },
  {
    name: 'size: eval.bootstrapSamples 1e12',
    setup: config({ eval: { bootstrapSamples: 1e12 } }),
    expect: [big('eval.bootstrapSamples')],
  },
  {
    name: 'size: workers.gpuConcurrency 1e6',
    setup: config({ workers: { gpuConcurrency: 1e6 } }),
    expect: [big('workers.gpuConcurrency')],
  },
  {
    name: 'size: dro.bufferSize 1e7',
    setup: config({ dro: { bufferSize: 1e7 } }),
    expect: [big('dro.bufferSize')],
  },
  { name: 'size: dpo.beta 1e300', setup: config({ dpo: { beta: 1e300 } }), expect: [big('dpo.beta')] },
  { name: 'size: sft.steps 1e18', setup: config({ sft: { steps: 1e18 } }), expect: [/\$\.sft\.steps/] },
  {
    name: 'size: memory of a 1024 px world',
    setup: config({
      model: { resolution: 1024 },
      data: { prompts: 100000 },
      pretrain: { corpusSize: 1000000 },
    }),
    expect: [
      /\$\.pretrain\.corpusSize: the run needs at least [\d.]+ GiB of memory/,
      /more than this machine's/,
    ],
  },
  // Types and ranges.
  {
    name: 'type: dro.steps as a string',
    setup: config({ dro: { steps: '100' } }),
    expect: [/\$\.dro\.steps: .*expected number/i],
  },
  {
    name: 'type: fractional batch size',
    setup: config({ sft: { batchSize: 2.5 } }),
    expect: [/\$\.sft\.batchSize: .*int/i],
  },
  {
    name: 'type: negative steps',
    setup: config({ dro: { steps: -5 } }),
    expect: [/\$\.dro\.steps: Too small/],
  },
  {
    name: 'type: learning rate 0',
    setup: config({ dro: { learningRate: 0 } }),
    expect: [/\$\.dro\.learningRate/],
  },
  { name: 'type: emaDecay 1', setup: config({ sft: { emaDecay: 1 } }), expect: [/\$\.sft\.emaDecay/] },
  {
    name: 'type: resolution 4',
    setup: config({ model: { resolution: 4 } }),
    expect: [/\$\.model\.resolution: Too small/],
  },
  { name: 'type: negative seed', setup: config({ seed: -1 }), expect: [/\$\.seed: Too small/] },
  {
    name: 'type: unknown storage kind',
    setup: config({ storage: { kind: 'ftp' } }),
    expect: [/\$\.storage\.kind/],
  },
  {
    name: 'type: unknown baseline',
    setup: config({ eval: { baselines: ['ppo'] } }),
    expect: [/\$\.eval\.baselines\[0\]/],
  },
  {
    name: 'type: unknown unet',
    setup: config({ model: { unet: 'sdxl' } }),
    expect: [/\$\.model\.unet: Invalid option/],
  },
  // Cross-field rules.
  {
    name: 'rule: folder without baseCheckpoint',
    setup: config({ data: { source: 'folder', paths: ['x'] }, ranking: { rewardModel: 'detector' } }),
    expect: [/\$\.model\.baseCheckpoint: data\.source 'folder' needs model\.baseCheckpoint/],
  },
  {
    name: 'rule: pickapic without baseCheckpoint',
    setup: config({ data: { source: 'pickapic', paths: ['x'] } }),
    expect: [/\$\.model\.baseCheckpoint: data\.source 'pickapic' needs model\.baseCheckpoint/],
  },
  {
    name: 'rule: pickapic without paths',
    setup: config({ data: { source: 'pickapic' }, model: { baseCheckpoint: 'm' } }),
    expect: [/\$\.data\.paths: .*needs at least one path/],
  },
  {
    name: 'rule: tiny unet in the built-in world',
    setup: config({ model: { unet: 'tiny' } }),
    expect: [/\$\.model\.unet: model\.unet 'tiny' takes 4-channel latents/],
  },
  {
    name: 'rule: sd15 unet in the built-in world',
    setup: config({ model: { unet: 'sd15' } }),
    expect: [/\$\.model\.unet: model\.unet 'sd15'/],
  },
  {
    name: 'rule: caption folder with the preference reward',
    setup: config({ model: { baseCheckpoint: 'm' }, data: { source: 'folder', paths: ['x'] } }),
    expect: [/\$\.ranking\.rewardModel: .*caption folder/],
  },
  {
    name: 'rule: two caption folders',
    setup: config({
      model: { baseCheckpoint: 'm' },
      data: { source: 'folder', paths: ['x', 'y'] },
      ranking: { rewardModel: 'detector' },
    }),
    expect: [/\$\.data\.paths: .*exactly one folder/],
  },
  {
    name: 'rule: topK above the world images',
    setup: config({ data: { prompts: 10 }, ranking: { topK: 21 } }),
    expect: [/\$\.ranking\.topK: .*more than the 20 images/],
  },
  {
    name: 'rule: onnx without a model',
    setup: config({ ranking: { rewardModel: 'onnx' } }),
    expect: [/\$\.ranking\.onnxModel: .*needs ranking\.onnxModel/],
  },
  {
    name: 'rule: checkpoint not on an update boundary',
    setup: config({ dro: { gradientAccumulation: 16, checkpointEvery: 10 } }),
    expect: [/\$\.dro\.checkpointEvery: .*multiple of dro\.gradientAccumulation/],
  },
  {
    name: 'rule: resolution not divisible for the unet',
    setup: config({ model: { resolution: 17 } }),
    expect: [/\$\.model\.resolution: .*divisible by 2/],
  },
  { name: 'name: 300 characters', setup: config({ name: 'n'.repeat(300) }), expect: [/\$\.name: Too big/] },
  {
    name: 'name: control characters',
    setup: config({ name: 'run\u0007\u001b]0;pwned\u0007' }),
    expect: [/\$\.name: must not contain control characters/],
  },
  {
    name: 'name: path with control characters',
    setup: config({ data: { source: 'pickapic', paths: ['a\u001b[31mb'] }, model: { baseCheckpoint: 'm' } }),
    expect: [/\$\.data\.paths\[0\]: must not contain control characters/],
  },
  {
    name: 'config: over the 2 MiB workflow payload',
    setup: config({
      model: { baseCheckpoint: 's3://models/m.safetensors' },
      data: {
        source: 'pickapic',
        paths: Array.from({ length: 600 }, (_, i) => `s3://bucket/${'p'.repeat(4000)}${i}`),
      },
    }),
    expect: [/\$: the config is \d+ bytes as the workflow's input, more than Temporal's payload limit/],
  },
  // Storage and Temporal.
  {
    name: 'storage: bucket a..b',
    setup: config({ storage: { kind: 's3', bucket: 'a..b' } }),
    expect: [/\$\.storage\.bucket: not a valid S3 bucket name: must not contain two adjacent periods/],
  },
  {
    name: 'storage: bucket as an IP address',
    setup: config({ storage: { kind: 's3', bucket: '192.168.5.4' } }),
    expect: [/\$\.storage\.bucket: .*IP address/],
  },
  {
    name: 'storage: bucket in upper case',
    setup: config({ storage: { kind: 's3', bucket: 'MyBucket' } }),
    expect: [/\$\.storage\.bucket: not a valid S3 bucket name/],
  },
  {
    name: 'storage: reserved bucket suffix',
    setup: config({ storage: { kind: 's3', bucket: 'data-s3alias' } }),
    expect: [/\$\.storage\.bucket: .*reserved suffix '-s3alias'/],
  },
  {
    name: 'storage: javascript: endpoint',
    setup: config({ storage: { kind: 's3', bucket: 'ok-bucket', endpoint: 'javascript:alert(1)' } }),
    expect: [/\$\.storage\.endpoint: must be an http:\/\/ or https:\/\/ URL/],
  },
  {
    name: 'storage: file: endpoint',
    setup: config({ storage: { kind: 's3', bucket: 'ok-bucket', endpoint: 'file:///etc/passwd' } }),
    expect: [/\$\.storage\.endpoint: must be an http/],
  },
  {
    name: 'storage: root with a NUL byte',
    setup: config({ storage: { kind: 'local', root: '/tmp/a\u0000b' } }),
    expect: [/\$\.storage\.root: must not contain control characters/],
  },
  {
    name: 'storage: root /dev/null',
    setup: config({ storage: { kind: 'local', root: '/dev/null' } }),
    expect: [/\$\.storage\.root: artifact root: \/dev\/null is not a directory/],
  },
  {
    name: 'storage: root under a file',
    setup: (d) => (
      fs.writeFileSync(path.join(d, 'f'), ''),
      json(d, 'config.json', { storage: { kind: 'local', root: 'f/artifacts' } })
    ),
    expect: [/\$\.storage\.root: artifact root: .* is not a directory/],
  },
  {
    name: 'temporal: address with a scheme',
    setup: config({ temporal: { address: 'http://temporal:7233' } }),
    expect: [/\$\.temporal\.address: must be '' \(embedded server\) or host:port/],
  },
  {
    name: 'temporal: port out of range',
    setup: config({ temporal: { address: 'temporal:99999' } }),
    expect: [/\$\.temporal\.address: must be/],
  },
  {
    name: 'temporal: no port',
    setup: config({ temporal: { address: 'temporal' } }),
    expect: [/\$\.temporal\.address: must be/],
  },
  // Base checkpoint: where it points.
  {
    name: 'checkpoint: javascript: scheme',
    setup: config({ model: { baseCheckpoint: 'javascript:alert(1)' } }),
    expect: [/\$\.model\.baseCheckpoint: unsupported scheme 'javascript:'/],
  },
  {
    name: 'checkpoint: http scheme',
    setup: config({ model: { baseCheckpoint: 'https://example.com/m.safetensors' } }),
    expect: [/\$\.model\.baseCheckpoint: unsupported scheme 'https:\/\/'/],
  },
  {
    name: 'checkpoint: missing file',
    setup: config({ model: { baseCheckpoint: 'missing.safetensors' } }),
    expect: [/\$\.model\.baseCheckpoint: cannot read .*missing\.safetensors \(no such file or directory\)/],
  },
  {
    name: 'checkpoint: a directory',
    setup: (d) => (fs.mkdirSync(path.join(d, 'm')), bundleConfig(d, 'm')),
    // A directory may be a diffusers pipeline folder; this one has no model_index.json.
    expect: [
      /\$\.model\.baseCheckpoint: .*m: model_index.json not found: a directory is not a model bundle file/,
    ],
  },
  {
    name: 'checkpoint: file URI of a missing file',
    setup: config({ model: { baseCheckpoint: 'file:///nonexistent/m.safetensors' } }),
    expect: [/\$\.model\.baseCheckpoint: cannot read \/nonexistent\/m\.safetensors/],
  },
  {
    name: 'checkpoint: bad S3 bucket',
    setup: config({ model: { baseCheckpoint: 's3://a..b/m.safetensors' } }),
    expect: [/\$\.model\.baseCheckpoint: .*a\.\.b/],
  },
  {
    name: 'onnx: missing model file',
    setup: config({ ranking: { rewardModel: 'onnx', onnxModel: 'reward.onnx' } }),
    expect: [/\$\.ranking\.onnxModel: cannot read .*reward\.onnx/],
  },
  // Safetensors framing.
  rawCheckpointCase('random bytes', () => new Uint8Array(4096).map((_, i) => (i * 7919) % 251), [
    /header length \d+ (runs past|is more than)/,
  ]),
  rawCheckpointCase('shorter than 8 bytes', () => new Uint8Array([1, 2, 3]), [
    /shorter than the 8-byte header length/,
  ]),
  rawCheckpointCase('header length 2^62', () => safetensorsBytes('{}', new Uint8Array(0), 2n ** 62n), [
    /header length \d+ is more than the 100000000 bytes allowed/,
  ]),
  rawCheckpointCase('header length past the end', () => safetensorsBytes('{}', new Uint8Array(0), 1000n), [
    /runs past the end/,
  ]),
  rawCheckpointCase('header not JSON', () => safetensorsBytes('{"a": '), [/header is not valid UTF-8 JSON/]),
  rawCheckpointCase('header is an array', () => safetensorsBytes('[1,2]'), [/header JSON is not an object/]),
  rawCheckpointCase(
    'unsupported dtype',
    () => safetensorsBytes('{"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', new Uint8Array(8)),
    [/tensor 't': unsupported dtype "I64"/],
  ),
  rawCheckpointCase(
    'negative shape',
    () => safetensorsBytes('{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4)),
    [/tensor 't': shape \[-1\] is not a list of non-negative integers/],
  ),
  rawCheckpointCase(
    'overlapping tensors',
    () =>
      safetensorsBytes(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        new Uint8Array(12),
      ),
    [/overlap tensor/],
  ),
  rawCheckpointCase(
    'truncated data',
    () =>
      safetensorsBytes('{"t":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}', new Uint8Array(100)),
    [/truncated/],
  ),
  rawCheckpointCase(
    'extra bytes',
    () => safetensorsBytes('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(12)),
    [/8 extra bytes after the last tensor/],
  ),
  rawCheckpointCase('metadata not strings', () => safetensorsBytes('{"__metadata__":{"format":1}}'), [
    /__metadata__ must map strings to strings/,
  ]),
  rawCheckpointCase(
    'plain diffusers UNet (wrong source)',
    () =>
      safetensorsBytes(
        '{"__metadata__":{"format":"pt"},"conv_in.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        new Uint8Array(4),
      ),
    [/is not a model bundle \(format 'pt'/],
  ),
  // Model bundle metadata and tensors.
  bundleCase('unet_config missing', (b) => delete b.metadata.unet_config, [
    /__metadata__ lacks 'unet_config'/,
  ]),
  bundleCase('unet_config not JSON', (b) => (b.metadata.unet_config = '{'), [/'unet_config' is not JSON/]),
  bundleCase(
    'negative channels',
    (b) => (b.metadata.unet_config = JSON.stringify({ ...DEMO_UNET, block_out_channels: [-32, 64] })),
    [/unet_config: UNetConfig\.block_out_channels\[0\] must be an integer/],
  ),
  bundleCase(
    'huge channels',
    (b) => (b.metadata.unet_config = JSON.stringify({ ...DEMO_UNET, block_out_channels: [1e9, 64] })),
    [/unet_config: UNetConfig\.block_out_channels\[0\] must be an integer in \[1, 8192\]/],
  ),
  bundleCase('unet_config a string', (b) => (b.metadata.unet_config = '"demo"'), [
    /unet_config: UNetConfig must be an object/,
  ]),
  bundleCase(
    'unknown block type',
    (b) =>
      (b.metadata.unet_config = JSON.stringify({ ...DEMO_UNET, down_block_types: ['DownBlock2D', 'Evil'] })),
    [/down_block_types\[1\] "Evil" is not one of/],
  ),
  bundleCase('text encoder config a number', (b) => (b.metadata.text_encoder_config = '7'), [
    /text_encoder_config: must be an object/,
  ]),
  bundleCase('tokenizer not an object', (b) => (b.metadata.tokenizer = '[]'), [
    /tokenizer: tokenizer config must be an object/,
  ]),
  bundleCase(
    'tokenizer words not a list',
    (b) => (b.metadata.tokenizer = JSON.stringify({ ...tokenizer.config, words: 5 })),
    [/tokenizer words must be a list of strings/],
  ),
  bundleCase(
    'tokenizer maxLength 1e9',
    (b) => (b.metadata.tokenizer = JSON.stringify({ ...tokenizer.config, maxLength: 1e9 })),
    [/tokenizer maxLength must be an integer in \[2, 1024\]/],
  ),
  bundleCase(
    'vocab size disagrees',
    (b) => (b.metadata.text_encoder_config = JSON.stringify({ ...TEXT, vocab_size: TEXT.vocab_size + 5 })),
    [/vocab_size \d+ differs from the tokenizer's/],
  ),
  bundleCase(
    'SD1.5 metadata on demo weights',
    (b) => (b.metadata.unet_config = JSON.stringify({ ...SD15_UNET, cross_attention_dim: 64 })),
    [/unet: \d+ of the \d+ tensors its config needs are missing/],
  ),
  bundleCase('a tensor missing', (b) => b.tensors.delete('unet/conv_in.weight'), [
    /unet: 1 of the \d+ tensors its config needs are missing: 'conv_in\.weight'/,
  ]),
  bundleCase(
    'a tensor with the wrong shape',
    (b) => b.tensors.set('unet/conv_in.bias', { shape: [31], data: new Float32Array(31) }),
    [/tensor 'conv_in\.bias' has shape \[31\], its config needs \[32\]/],
  ),
  bundleCase(
    'an unexpected tensor',
    (b) => b.tensors.set('unet/evil', { shape: [1], data: new Float32Array(1) }),
    [/1 unexpected tensor\(s\): 'unet\/evil'/],
  ),
  {
    name: 'bundle: model.unet differs from the bundle',
    setup: (d) =>
      json(d, 'config.json', {
        model: { unet: 'tiny', baseCheckpoint: writeBundle(d, 'model.safetensors', demoBundle()) },
      }),
    expect: [/\$\.model\.unet: model\.unet 'tiny' is not the UNet of model\.baseCheckpoint/],
  },
  // Caption folders.
  folderCase('PNG claiming 20000x20000', { 'a.png': pngClaiming(20000, 20000), 'a.txt': 'a red circle' }, [
    /a\.png: image declares 20000x20000, larger than 64 megapixels/,
  ]),
  folderCase('JPEG claiming 65535x65535', { 'a.jpg': jpegClaiming(65535, 65535), 'a.txt': 'a red circle' }, [
    /a\.jpg: image declares 65535x65535/,
  ]),
  folderCase(
    'PNG signature only',
    { 'a.png': new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]), 'a.txt': 'x' },
    [/a\.png: undecodable image \(no size header found\)/],
  ),
  folderCase('text in a .png', { 'a.png': 'hello', 'a.txt': 'x' }, [
    /a\.png: undecodable image \(neither PNG nor JPEG signature\)/,
  ]),
  folderCase('empty .png', { 'a.png': new Uint8Array(0), 'a.txt': 'x' }, [/a\.png: undecodable image/]),
  folderCase('8x8 image', { 'a.png': image(8), 'a.txt': 'x' }, [
    /a\.png: image 8x8 is smaller than the minimum side 16/,
  ]),
  folderCase('image without caption', { 'a.png': image(16) }, [/a\.png: image without caption file a\.txt/]),
  folderCase('caption without image', { 'a.png': image(16), 'a.txt': 'x', 'b.txt': 'y' }, [
    /b\.txt: caption without an image/,
  ]),
  folderCase('empty caption', { 'a.png': image(16), 'a.txt': '   ' }, [/a\.txt: empty caption/]),
  folderCase('manifest not JSON', { 'a.png': image(16), 'metadata.jsonl': '{oops' }, [
    /metadata\.jsonl line 1: not valid JSON/,
  ]),
  folderCase(
    'manifest names a missing image',
    { 'a.png': image(16), 'metadata.jsonl': '{"file_name":"b.png","text":"x"}' },
    [/metadata\.jsonl line 1: image b\.png does not exist/],
  ),
  folderCase(
    'manifest escapes the folder',
    { 'a.png': image(16), 'metadata.jsonl': '{"file_name":"../model.safetensors.png","text":"x"}' },
    [/must name a file in the folder itself/],
  ),
  folderCase('empty folder', {}, [/no images/]),
  folderCase('folder missing', null, [/cannot read .*data \(no such file or directory\)/]),
  folderCase(
    'topK above the images',
    { 'a.png': image(16), 'a.txt': 'x' },
    [/\$\.ranking\.topK: ranking\.topK \(5\) is more than the 1 images data\.paths hold/],
    { ranking: { rewardModel: 'detector', topK: 5 } },
  ),
  // Pick-a-Pic shards.
  shardCase('not parquet', (f) => fs.writeFileSync(f, 'PAR1 but not really'), [
    /shard\.parquet: not a readable parquet file/,
  ]),
  shardCase(
    'truncated',
    async (f) => {
      await writePickapicParquet(f, [goodRow(0), goodRow(1)]);
      const b = fs.readFileSync(f);
      fs.writeFileSync(f, b.subarray(0, b.length >> 1));
    },
    [/shard\.parquet: not a readable parquet file/],
  ),
  shardCase(
    'missing columns',
    (f) =>
      fs.writeFileSync(
        f,
        new Uint8Array(
          parquetWriteBuffer({ columnData: [{ name: 'caption', data: ['x'], type: 'STRING' }] }),
        ),
      ),
    [/shard\.parquet: missing required column\(s\): image_0_uid/],
  ),
  shardCase('label stored as the string "1"', columnsShard({ label_0: { data: ['1'], type: 'STRING' } }), [
    /column label_0 holds string values \(BYTE_ARRAY\), expected DOUBLE or FLOAT/,
  ]),
  shardCase('caption stored as integers', columnsShard({ caption: { data: [5n], type: 'INT64' } }), [
    /column caption holds type INT64, expected BYTE_ARRAY/,
  ]),
  shardCase('user_id stored as text', columnsShard({ user_id: { data: ['u1'], type: 'STRING' } }), [
    /column user_id holds string values/,
  ]),
  shardCase('label 2', rowsShard([goodRow(0, { label_0: 2, label_1: -1 })]), [
    /row 0 field label_0: bad_label \(must be the number 0, 0\.5 or 1, got number 2\)/,
  ]),
  shardCase('labels not summing to one', rowsShard([goodRow(0, { label_0: 1, label_1: 1 })]), [
    /row 0 field label_0\+label_1: labels_not_summing_to_one/,
  ]),
  shardCase('null caption', rowsShard([goodRow(0), goodRow(1, { caption: null })]), [
    /row 1 field caption: missing_caption \(empty or null\)/,
  ]),
  // The same bound as a caption file of an image folder.
  shardCase(
    'a 10 MB caption',
    rowsShard([goodRow(0), goodRow(1, { caption: 'x'.repeat(10 * 1024 * 1024) })]),
    [/row 1 field caption: caption_too_long \(10485760 bytes, more than the 1048576 a caption may hold\)/],
  ),
  shardCase(
    'undecodable image',
    rowsShard([goodRow(0, { jpg_0: new TextEncoder().encode('not an image') })]),
    [/row 0 field jpg_0: undecodable_image/],
  ),
  shardCase('image too small', rowsShard([goodRow(0, { jpg_1: image(8) })]), [
    /row 0 field jpg_1: image_too_small \(8x8 < 16\)/,
  ]),
  shardCase('image claiming 20000x20000', rowsShard([goodRow(0, { jpg_0: pngClaiming(20000, 20000) })]), [
    /row 0 field jpg_0: undecodable_image .*declares 20000x20000/,
  ]),
  shardCase('null image', rowsShard([goodRow(0, { jpg_1: null })]), [
    /row 0 field jpg_1: missing_image \(empty or null\)/,
  ]),
  shardCase('folder of no shards', () => undefined, [/directory .*data holds no \.parquet shards/], {
    data: { source: 'pickapic', paths: ['data'] },
  }),
  shardCase('missing shard', () => undefined, [/cannot read .*shard\.parquet \(no such file or directory\)/]),
  shardCase(
    'topK above the images',
    rowsShard([goodRow(0)]),
    [/\$\.ranking\.topK: ranking\.topK \(3\) is more than the 2 images data\.paths hold/],
    { ranking: { rewardModel: 'detector', topK: 3 } },
  ),
];
