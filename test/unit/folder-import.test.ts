import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toUint8 } from '../../engine/data/image';
import { encodeJpeg, encodePng } from '../../engine/data/image-codec';
import { renderScene } from '../../engine/world/render';
import { FolderImportError, importCaptionFolder } from '../../engine/data/folder-import';

let root: string;
let n = 0;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'folder-import-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const img = toUint8(
  renderScene({ objects: [{ class: 'cross', color: 'green', cx: 0.5, cy: 0.5, size: 0.5 }] }),
);

async function folder(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = path.join(root, `f${n++}`);
  await fs.mkdir(dir);
  for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content);
  return dir;
}

async function rejectsNaming(dir: string, file: string, detail: RegExp): Promise<void> {
  await assert.rejects(importCaptionFolder(dir), (e: Error) => {
    assert.ok(e instanceof FolderImportError, e.message);
    assert.ok(e.message.startsWith(path.join(dir, file)), e.message);
    assert.match(e.message, detail);
    return true;
  });
}

describe('importCaptionFolder', () => {
  test('sidecar layout: pairs sorted by name, captions trimmed, other files ignored', async () => {
    const dir = await folder({
      '0002.jpg': encodeJpeg(img),
      '0002.txt': 'a photo of a green cross\n',
      '0001.png': encodePng(img),
      '0001.txt': '  a photo of a cross ',
      'README.md': 'notes',
    });
    const items = await importCaptionFolder(dir);
    assert.deepEqual(
      items.map((i) => [i.fileName, i.caption]),
      [
        ['0001.png', 'a photo of a cross'],
        ['0002.jpg', 'a photo of a green cross'],
      ],
    );
    assert.deepEqual(Array.from(items[0]!.image.data), Array.from(img.data));
  });

  test('manifest layout (metadata.jsonl) is authoritative', async () => {
    const dir = await folder({
      'b.png': encodePng(img),
      'a.png': encodePng(img),
      'a.txt': 'ignored',
      'metadata.jsonl': '{"file_name":"b.png","text":"second"}\n\n{"file_name":"a.png","text":"first"}\n',
    });
    assert.deepEqual(
      (await importCaptionFolder(dir)).map((i) => [i.fileName, i.caption]),
      [
        ['a.png', 'first'],
        ['b.png', 'second'],
      ],
    );
  });

  test('sidecar errors name the file', async () => {
    await rejectsNaming(
      await folder({ '1.png': encodePng(img) }),
      '1.png',
      /image without caption file 1\.txt/,
    );
    await rejectsNaming(
      await folder({ '1.png': encodePng(img), '1.txt': 'x', '2.txt': 'y' }),
      '2.txt',
      /caption without an image/,
    );
    await rejectsNaming(await folder({ '1.png': encodePng(img), '1.txt': '  \n' }), '1.txt', /empty caption/);
    await rejectsNaming(
      await folder({ '1.png': encodePng(img), '1.jpg': encodeJpeg(img), '1.txt': 'x' }),
      '1.png',
      /two images share the stem 1/,
    );
    await rejectsNaming(
      await folder({ '1.png': new TextEncoder().encode('garbage'), '1.txt': 'x' }),
      '1.png',
      /undecodable image/,
    );
    await rejectsNaming(
      await folder({ '1.png': encodePng({ width: 4, height: 4, data: new Uint8Array(48) }), '1.txt': 'x' }),
      '1.png',
      /4x4 is smaller than the minimum side 16/,
    );
    await rejectsNaming(await folder({ 'notes.md': 'x' }), '', /no images/);
  });

  test('manifest errors name the file and line', async () => {
    const m = 'metadata.jsonl';
    await rejectsNaming(
      await folder({ 'a.png': encodePng(img), [m]: '{"file_name":"a.png","text":"x"}\n{nope' }),
      `${m} line 2`,
      /not valid JSON/,
    );
    await rejectsNaming(
      await folder({ 'a.png': encodePng(img), [m]: '{"file_name":"b.png","text":"x"}' }),
      `${m} line 1`,
      /b\.png does not exist/,
    );
    await rejectsNaming(
      await folder({ 'a.png': encodePng(img), [m]: '{"file_name":"a.png"}' }),
      `${m} line 1`,
      /field text/,
    );
    await rejectsNaming(
      await folder({
        'a.png': encodePng(img),
        [m]: '{"file_name":"a.png","text":"x"}\n{"file_name":"a.png","text":"y"}',
      }),
      `${m} line 2`,
      /listed twice/,
    );
  });

  test('a missing folder is reported by path', async () => {
    const missing = path.join(root, 'does-not-exist');
    await assert.rejects(
      importCaptionFolder(missing),
      (e: Error) => e instanceof FolderImportError && e.message.startsWith(missing),
    );
  });
});
