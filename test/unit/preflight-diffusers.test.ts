/**
 * Pre-flight of a diffusers folder as the base model: every bad folder is named, by file and field,
 * before any server or worker starts, and the shipped tiny Stable Diffusion config passes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { preflight } from '../../cli/preflight';
import { loadConfigFile } from '../../config/load';
import { PipelineConfig } from '../../config/schemas';
import { serializeSafetensors, parseSafetensors } from '../../engine/io/safetensors';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'tiny-sd');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'preflight-sd-'));
const opts = { cwd: ROOT, totalMemoryBytes: 64 * 1024 ** 3 };
after(() => fs.rmSync(work, { recursive: true, force: true }));

function config(folder: string, resolution = 16): PipelineConfig {
  const shipped = loadConfigFile(path.join(ROOT, 'config', 'tiny-sd.json'));
  return PipelineConfig.parse({
    ...shipped,
    storage: { kind: 'local', root: path.join(work, 'artifacts') },
    model: { ...shipped.model, baseCheckpoint: folder, resolution },
  });
}

let copies = 0;
function broken(edit: (dir: string) => void): string {
  const dir = path.join(work, `copy-${copies++}`);
  fs.cpSync(FIXTURE, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editJson(file: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
}

async function problemsOf(folder: string, resolution = 16) {
  return preflight(config(folder, resolution), opts);
}

describe('preflight of a diffusers folder', () => {
  test('config/tiny-sd.json passes', async () => {
    assert.deepEqual(await problemsOf(FIXTURE), []);
  });

  test('a missing component names the component and the file', async () => {
    const dir = broken((d) => fs.rmSync(path.join(d, 'vae'), { recursive: true }));
    const [p, ...rest] = await problemsOf(dir);
    assert.equal(rest.length, 0);
    assert.equal(p!.path, '$.model.baseCheckpoint');
    assert.match(p!.message, /missing component 'vae': vae\/config\.json not found/);
  });

  test('model_index.json naming an unsupported class', async () => {
    const dir = broken((d) =>
      editJson(path.join(d, 'model_index.json'), (j) => (j._class_name = 'StableDiffusionXLPipeline')),
    );
    const [p] = await problemsOf(dir);
    assert.equal(p!.path, '$.model.baseCheckpoint');
    assert.match(p!.message, /model_index\.json.*_class_name.*StableDiffusionXLPipeline/);
  });

  test('merges that do not match the vocab name merges.txt and the line', async () => {
    const dir = broken((d) => fs.appendFileSync(path.join(d, 'tokenizer', 'merges.txt'), 'zq xj\n'));
    const [p] = await problemsOf(dir);
    assert.match(p!.message, /tokenizer\/merges\.txt: line \d+ merges "zq xj" but "zq" is not in the vocab/);
  });

  test("the VAE's latent_channels differ from the UNet's in_channels", async () => {
    const dir = broken((d) => editJson(path.join(d, 'vae', 'config.json'), (j) => (j.latent_channels = 8)));
    const [p] = await problemsOf(dir);
    assert.match(
      p!.message,
      /vae\/config\.json: field 'latent_channels' \(8\) differs from unet\/config\.json in_channels 4/,
    );
  });

  test('weights whose shapes differ from the config are named by file and tensor, from the header', async () => {
    const dir = broken((d) => {
      const file = path.join(d, 'unet', 'diffusion_pytorch_model.safetensors');
      const parsed = parseSafetensors(new Uint8Array(fs.readFileSync(file)));
      const t = parsed.tensors.get('conv_in.bias')!;
      parsed.tensors.set('conv_in.bias', {
        ...t,
        shape: [t.shape[0]! + 1],
        data: new Float32Array(t.shape[0]! + 1),
      });
      fs.writeFileSync(file, serializeSafetensors(parsed.tensors, { metadata: parsed.metadata }));
    });
    const [p] = await problemsOf(dir);
    assert.match(
      p!.message,
      /unet\/diffusion_pytorch_model\.safetensors: tensor 'conv_in\.bias' has shape \[33\], unet\/config\.json implies \[32\]/,
    );
  });

  test('a schedule the pipeline does not train on', async () => {
    const dir = broken((d) =>
      editJson(path.join(d, 'scheduler', 'scheduler_config.json'), (j) => (j.beta_schedule = 'linear')),
    );
    const [p] = await problemsOf(dir);
    assert.match(p!.message, /scheduler_config\.json: field 'beta_schedule' is "linear"/);
  });

  test('model.resolution other than the folder image size', async () => {
    const problems = await problemsOf(FIXTURE, 32);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['$.model.resolution'],
    );
    assert.match(problems[0]!.message, /works at 16 px .*set it to 16/);
  });
});
