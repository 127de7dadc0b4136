import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePng } from '../../engine/data/image-codec';
import { toModelSpace } from '../../engine/world/pretraining-corpus';
import { expertImageDataset, type ExpertSet, type RankingItem } from '../../engine/ranking/expert-ranking';
import { resizeToFloat } from '../../engine/rewards/reward-model';

function image(side: number, seed: number) {
  return {
    width: side,
    height: side,
    data: new Uint8Array(side * side * 3).map((_, k) => (seed * 31 + k * 13) % 256),
  };
}

describe('expertImageDataset', () => {
  test('kept images in ranking order, resized to the resolution, in model space, with uids and scores', () => {
    const a = image(8, 1);
    const b = image(6, 2);
    const items: RankingItem[] = [
      { uid: 'a', prompt: 'first', image: encodePng(a) },
      { uid: 'b', prompt: 'second', image: encodePng(b) },
      { uid: 'c', prompt: 'third', image: encodePng(image(4, 3)) },
    ];
    const set: ExpertSet = {
      rewardModel: { name: 'r', version: '1' },
      k: 2,
      total: 3,
      shardSize: 2,
      experts: [
        { uid: 'b', prompt: 'second', score: 0.9, rank: 0 },
        { uid: 'a', prompt: 'first', score: 0.5, rank: 1 },
      ],
    };
    const ds = expertImageDataset(set, items, 4);
    assert.deepEqual([ds.height, ds.width, ds.channels], [4, 4, 3]);
    assert.deepEqual(ds.ids, ['b', 'a']);
    assert.deepEqual(ds.scores, [0.9, 0.5]);
    assert.deepEqual(
      ds.examples.map((e) => e.prompt),
      ['second', 'first'],
    );
    assert.deepEqual(ds.examples[0]!.image, toModelSpace(resizeToFloat(b, 4, 4)));
    assert.deepEqual(ds.examples[1]!.image, toModelSpace(resizeToFloat(a, 4, 4)));
  });

  test('an undecodable kept image names its uid', () => {
    const items: RankingItem[] = [{ uid: 'bad', prompt: 'p', image: new Uint8Array([1, 2, 3]) }];
    const set: ExpertSet = {
      rewardModel: { name: 'r', version: '1' },
      k: 1,
      total: 1,
      shardSize: 1,
      experts: [{ uid: 'bad', prompt: 'p', score: 1, rank: 0 }],
    };
    assert.throws(() => expertImageDataset(set, items, 4), /image bad/);
  });
});
