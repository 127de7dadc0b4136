import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import {
  DiffusersFolderError,
  loadDiffusersPipeline,
  readDiffusersPipeline,
  type DiffusersPipeline,
} from '../../engine/io/diffusers-pipeline';
import {
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  type SafetensorsFile,
} from '../../engine/io/safetensors';
import { TokenizerError } from '../../engine/models/tokenizer';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const TINY_SD = path.join(FIXTURES, 'tiny-sd');
const UNET_FILE = 'unet/diffusion_pytorch_model.safetensors';
const VAE_FILE = 'vae/diffusion_pytorch_model.safetensors';
const TEXT_FILE = 'text_encoder/model.safetensors';

let scratch: string;
let copies = 0;

/** A fresh copy of the fixture folder to break. */
async function copyFixture(): Promise<string> {
  const dir = path.join(scratch, `sd-${copies++}`);
  await fs.cp(TINY_SD, dir, { recursive: true });
  return dir;
}

async function editJson(file: string, edit: (json: Record<string, unknown>) => void): Promise<void> {
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  await fs.writeFile(file, JSON.stringify(json));
}

/** A safetensors file with tensors stored as given (dtype and raw little-endian bytes). */
async function writeRaw(
  file: string,
  entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[],
) {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.byteLength] };
    offset += e.bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let pos = 8 + json.byteLength;
  for (const e of entries) {
    out.set(e.bytes, pos);
    pos += e.bytes.byteLength;
  }
  await fs.writeFile(file, out);
}

/** bfloat16 bytes of float32 values (truncation: the high half of each float). */
function bf16Bytes(data: Float32Array): Uint8Array {
  const src = new Uint16Array(data.buffer, data.byteOffset, data.length * 2);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = src[2 * i + 1]!;
  return new Uint8Array(out.buffer);
}

async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof DiffusersFolderError, `${e.name}: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return diff / scale;
}

function tensorOf(file: SafetensorsFile, name: string): tf.Tensor {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`fixture tensor '${name}' missing`);
  return tf.tensor(t.data, t.shape, 'float32');
}

/** The UNet's noise prediction on the parity prompts, through the loaded tokenizer and text encoder. */
async function unetParityError(pipe: DiffusersPipeline): Promise<number> {
  const parity = path.join(FIXTURES, 'tiny-sd-parity');
  const text = await readSafetensors(path.join(parity, 'text-encoder.safetensors'));
  const io = await readSafetensors(path.join(parity, 'unet.safetensors'));
  const prompts = JSON.parse(text.metadata.prompts!) as string[];
  const ids = tf.tensor2d(
    pipe.tokenizer.encodeBatch(prompts),
    [prompts.length, pipe.tokenizer.config.maxLength],
    'int32',
  );
  const context = pipe.text.encode(ids);
  const latents = tensorOf(io, 'input.latents.nhwc') as tf.Tensor4D;
  const t = tensorOf(io, 'input.timesteps') as tf.Tensor1D;
  const eps = pipe.unet.predict(latents, t, context);
  const want = tensorOf(io, 'output.eps.nhwc');
  const err = relativeError(eps, want);
  tf.dispose([ids, context, latents, t, eps, want]);
  return err;
}

describe('diffusers pipeline folder (tiny-sd fixture)', () => {
  before(async () => {
    await initBackend('cpu');
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-sd-'));
  });
  after(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test('reads every config and the tokenizer without reading weights', async () => {
    const spec = await readDiffusersPipeline(TINY_SD);
    assert.equal(spec.modelIndex._class_name, 'StableDiffusionPipeline');
    assert.deepEqual(spec.unet.block_out_channels, [32, 32]);
    assert.equal(spec.unet.attention_head_dim, 2);
    assert.equal(spec.vae.latent_channels, 4);
    assert.equal(spec.vae.scaling_factor, 0.18215);
    assert.equal(spec.textEncoder.hidden_size, 32);
    assert.equal(spec.tokenizer.vocabSize, 935);
    assert.equal(spec.tokenizer.config.maxLength, 77);
    assert.equal(spec.imageSize, 16);
    assert.equal(spec.scheduler.className, 'PNDMScheduler');
    assert.deepEqual(spec.scheduler.schedule, {
      betaStart: 0.00085,
      betaEnd: 0.012,
      betaSchedule: 'scaled_linear',
      numTrainTimesteps: 1000,
      timestepSpacing: 'leading',
      stepsOffset: 1,
    });
    assert.deepEqual(spec.weights, { unet: [UNET_FILE], vae: [VAE_FILE], text_encoder: [TEXT_FILE] });
  });

  test('loads the models: tokens -> text encoder -> UNet equals diffusers within 1e-4 relative', async () => {
    const pipe = await loadDiffusersPipeline(pathToFileURL(TINY_SD).href);
    try {
      const err = await unetParityError(pipe);
      assert.ok(err < 1e-4, `relative error ${err}`);
      assert.equal(pipe.unet.params.trainable, true);
      assert.equal(pipe.vae.params.trainable, false);
    } finally {
      pipe.dispose();
    }
  });

  test('F16 and BF16 weights, the .fp16 variant names and legacy key names load', async () => {
    const dir = await copyFixture();
    // UNet as the fp16 variant only; VAE in F16 with the old attention names; text encoder in BF16
    // with transformers 4's `text_model.` prefix and its int64 position_ids buffer.
    const unet = await readSafetensors(path.join(dir, UNET_FILE));
    await fs.rm(path.join(dir, UNET_FILE));
    await writeSafetensors(path.join(dir, 'unet/diffusion_pytorch_model.fp16.safetensors'), unet.tensors, {
      dtype: 'F16',
    });
    const vae = await readSafetensors(path.join(dir, VAE_FILE));
    const legacy = new Map(
      [...vae.tensors].map(([k, t]) => [
        k
          .replace(/attentions\.0\.to_q\./, 'attentions.0.query.')
          .replace(/attentions\.0\.to_out\.0\./, 'attentions.0.proj_attn.'),
        t,
      ]),
    );
    assert.ok(legacy.has('decoder.mid_block.attentions.0.proj_attn.weight'));
    await fs.writeFile(path.join(dir, VAE_FILE), serializeSafetensors(legacy, { dtype: 'F16' }));
    const text = await readSafetensors(path.join(dir, TEXT_FILE));
    const positionIds = new BigInt64Array(77).map((_, i) => BigInt(i));
    await writeRaw(path.join(dir, TEXT_FILE), [
      {
        name: 'text_model.embeddings.position_ids',
        dtype: 'I64',
        shape: [1, 77],
        bytes: new Uint8Array(positionIds.buffer),
      },
      ...[...text.tensors].map(([k, t]) => ({
        name: `text_model.${k}`,
        dtype: 'BF16',
        shape: t.shape,
        bytes: bf16Bytes(t.data),
      })),
    ]);

    const spec = await readDiffusersPipeline(dir);
    assert.deepEqual(spec.weights.unet, ['unet/diffusion_pytorch_model.fp16.safetensors']);
    const pipe = await loadDiffusersPipeline(dir);
    try {
      // Reduced precision moves the output, but only as far as the rounding of the weights does.
      const err = await unetParityError(pipe);
      assert.ok(err > 1e-6 && err < 0.05, `relative error ${err}`);
      const q = pipe.vae.params.get('decoder.mid_block.attentions.0.to_q.weight');
      assert.ok(Number.isFinite(q.dataSync()[0]));
    } finally {
      pipe.dispose();
    }
  });

  test("variant 'fp16' prefers the .fp16 file when both exist", async () => {
    const dir = await copyFixture();
    await fs.copyFile(
      path.join(dir, VAE_FILE),
      path.join(dir, 'vae/diffusion_pytorch_model.fp16.safetensors'),
    );
    assert.deepEqual((await readDiffusersPipeline(dir)).weights.vae, [VAE_FILE]);
    assert.deepEqual((await readDiffusersPipeline(dir, { variant: 'fp16' })).weights.vae, [
      'vae/diffusion_pytorch_model.fp16.safetensors',
    ]);
  });

  test('sharded weights (an index.json) load', async () => {
    const dir = await copyFixture();
    const unet = await readSafetensors(path.join(dir, UNET_FILE));
    const names = [...unet.tensors.keys()];
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(
        path.join(dir, 'unet', file),
        new Map(shard.map((n) => [n, unet.tensors.get(n)!])),
      );
      for (const n of shard) weightMap[n] = file;
    }
    await fs.rm(path.join(dir, UNET_FILE));
    await fs.writeFile(
      path.join(dir, 'unet/diffusion_pytorch_model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const pipe = await loadDiffusersPipeline(dir);
    try {
      assert.equal(pipe.spec.weights.unet.length, 2);
      assert.ok((await unetParityError(pipe)) < 1e-4);
    } finally {
      pipe.dispose();
    }
  });

  test('a tokenizer folder with only tokenizer.json gives the same ids', async () => {
    const dir = await copyFixture();
    await fs.rm(path.join(dir, 'tokenizer/vocab.json'));
    await fs.rm(path.join(dir, 'tokenizer/merges.txt'));
    const fromFast = (await readDiffusersPipeline(dir)).tokenizer;
    const fromPair = (await readDiffusersPipeline(TINY_SD)).tokenizer;
    const prompt = "Two cats' photo: 3 red squares, café ❤";
    assert.deepEqual(fromFast.encode(prompt), fromPair.encode(prompt));
    assert.equal(fromFast.vocabSize, fromPair.vocabSize);
  });
});

describe('bad pipeline folders fail before training, naming the file and the field', () => {
  before(async () => {
    await initBackend('cpu');
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-sd-bad-'));
  });
  after(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test('not a pipeline folder / a missing component', async () => {
    await rejectsWith(
      readDiffusersPipeline(path.join(FIXTURES, 'tiny-sd-parity')),
      /model_index.json not found/,
    );
    const dir = await copyFixture();
    await fs.rm(path.join(dir, 'vae'), { recursive: true });
    await rejectsWith(readDiffusersPipeline(dir), /missing component 'vae'/, /vae\/config.json not found/);
    const noEntry = await copyFixture();
    await editJson(path.join(noEntry, 'model_index.json'), (j) => delete j.text_encoder);
    await rejectsWith(
      readDiffusersPipeline(noEntry),
      /model_index.json: missing component\(s\) 'text_encoder'/,
    );
  });

  test('a component without weights, or with pickle weights only', async () => {
    const dir = await copyFixture();
    await fs.rm(path.join(dir, UNET_FILE));
    await rejectsWith(readDiffusersPipeline(dir), /component 'unet' has no weights/);
    await fs.writeFile(path.join(dir, 'unet/diffusion_pytorch_model.bin'), 'pickle');
    await rejectsWith(
      readDiffusersPipeline(dir),
      /diffusion_pytorch_model.bin: PyTorch pickle weights are not read/,
    );
  });

  test('unsupported classes in model_index.json', async () => {
    const dir = await copyFixture();
    await editJson(path.join(dir, 'model_index.json'), (j) => (j.unet = ['diffusers', 'UNet2DModel']));
    await rejectsWith(
      readDiffusersPipeline(dir),
      /model_index.json: field 'unet' \(\["diffusers","UNet2DModel"\]\): unsupported class/,
    );
    const xl = await copyFixture();
    await editJson(path.join(xl, 'model_index.json'), (j) => (j._class_name = 'StableDiffusionXLPipeline'));
    await rejectsWith(
      readDiffusersPipeline(xl),
      /model_index.json: field '_class_name' \("StableDiffusionXLPipeline"\): unsupported pipeline/,
    );
  });

  test('unknown and unsupported config fields are named with the file', async () => {
    const dir = await copyFixture();
    await editJson(path.join(dir, 'unet/config.json'), (j) => {
      j.shiny_new_option = true;
      j.act_fn = 'gelu';
    });
    await rejectsWith(
      readDiffusersPipeline(dir),
      /unet\/config.json: /,
      /unknown field\(s\) 'shiny_new_option'/,
      /field 'act_fn' \("gelu"\): unsupported value \(the engine implements "silu"\)/,
    );
    const sched = await copyFixture();
    await editJson(
      path.join(sched, 'scheduler/scheduler_config.json'),
      (j) => (j.prediction_type = 'v_prediction'),
    );
    await rejectsWith(
      readDiffusersPipeline(sched),
      /scheduler_config.json: field 'prediction_type' \("v_prediction"\)/,
    );
    const text = await copyFixture();
    await editJson(path.join(text, 'text_encoder/config.json'), (j) => (j.hidden_act = 'relu'));
    await rejectsWith(
      readDiffusersPipeline(text),
      /text_encoder\/config.json: field 'hidden_act' \("relu"\)/,
    );
  });

  test('merges that do not match the vocab', async () => {
    const dir = await copyFixture();
    const merges = path.join(dir, 'tokenizer/merges.txt');
    await fs.appendFile(merges, 'q z\n');
    const line = (await fs.readFile(merges, 'utf8')).trimEnd().split('\n').length;
    await rejectsWith(
      readDiffusersPipeline(dir),
      new RegExp(`tokenizer/merges.txt: line ${line} merges "q z" but "qz" is not in the vocab`),
    );
  });

  test("a VAE whose latent_channels differ from the UNet's in_channels", async () => {
    const dir = await copyFixture();
    await editJson(path.join(dir, 'vae/config.json'), (j) => (j.latent_channels = 8));
    await rejectsWith(
      readDiffusersPipeline(dir),
      /vae\/config.json: field 'latent_channels' \(8\) differs from unet\/config.json in_channels 4/,
    );
  });

  test('a text encoder whose width is not the UNet cross_attention_dim, or a too-long model_max_length', async () => {
    const dir = await copyFixture();
    await editJson(path.join(dir, 'unet/config.json'), (j) => (j.cross_attention_dim = 64));
    await rejectsWith(
      readDiffusersPipeline(dir),
      /field 'hidden_size' \(32\) differs from unet\/config.json cross_attention_dim 64/,
    );
    const tok = await copyFixture();
    await editJson(path.join(tok, 'tokenizer/tokenizer_config.json'), (j) => (j.model_max_length = 100));
    await rejectsWith(
      readDiffusersPipeline(tok),
      /tokenizer_config.json: field 'model_max_length' \(100\) exceeds/,
    );
  });

  test('weights whose shapes differ from the config', async () => {
    const dir = await copyFixture();
    await editJson(path.join(dir, 'vae/config.json'), (j) => (j.block_out_channels = [16, 48]));
    await rejectsWith(
      loadDiffusersPipeline(dir),
      /vae\/diffusion_pytorch_model.safetensors: tensor 'encoder.down_blocks.1.resnets.0.conv1.weight' has shape \[32, 16, 3, 3\], vae\/config.json implies \[48, 16, 3, 3\]/,
    );
    const missing = await copyFixture();
    const unet = await readSafetensors(path.join(missing, UNET_FILE));
    unet.tensors.delete('conv_out.bias');
    await writeSafetensors(path.join(missing, UNET_FILE), unet.tensors);
    await rejectsWith(
      loadDiffusersPipeline(missing),
      /missing 1 tensor\(s\) unet\/config.json implies: conv_out.bias/,
    );
  });

  test('non-finite weights are named by file and tensor', async () => {
    const dir = await copyFixture();
    const vae = await readSafetensors(path.join(dir, VAE_FILE));
    vae.tensors.get('decoder.conv_out.bias')!.data[1] = NaN;
    await writeSafetensors(path.join(dir, VAE_FILE), vae.tensors);
    await assert.rejects(
      loadDiffusersPipeline(dir),
      /diffusion_pytorch_model.safetensors: tensor 'decoder.conv_out.bias' holds NaN/,
    );
  });

  test('a prompt longer than the tokenizer allows', async () => {
    const { tokenizer } = await readDiffusersPipeline(TINY_SD);
    assert.throws(() => tokenizer.encode('a red circle '.repeat(30), 'error'), TokenizerError);
    assert.equal(tokenizer.encode('a red circle '.repeat(30)).length, 77);
  });

  test('only local folders: other URIs are refused by name', async () => {
    await rejectsWith(
      readDiffusersPipeline('s3://bucket/models/sd15'),
      /s3:\/\/bucket\/models\/sd15: the engine reads pipeline folders from local paths/,
    );
  });
});
