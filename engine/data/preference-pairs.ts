/**
 * Training pairs of a preference set (a Pick-a-Pic v2 parquet artifact): for every comparison that
 * is not a tie, the prompt with the chosen image as winner and the other as loser, in model space
 * ([-1, 1] HWC). Ties say nothing about which image is better and are left out.
 */
import { resizeToFloat } from '../rewards/reward-model';
import type { PreferenceDataset, PreferencePair } from '../training/datasets';
import { TrainingInputError } from '../training/errors';
import type { RgbImage } from './image';
import { toFloat } from './image';
import { PickapicFileError, PickapicRowError, readPickapicBytes, type PickapicRow } from './pickapic';
import { toModelSpace } from './image';

/** The non-tie rows of a parquet with their images decoded, winner first. */
async function decodedPairs(
  bytes: Uint8Array,
  source: string,
): Promise<{ row: PickapicRow; winner: RgbImage; loser: RgbImage }[]> {
  let rows: PickapicRow[];
  try {
    ({ rows } = await readPickapicBytes(bytes, 'parquet', {
      images: 'decode',
      onBadRow: 'fail',
      minImageSide: 1,
    }));
  } catch (err) {
    if (err instanceof PickapicFileError || err instanceof PickapicRowError)
      throw new TrainingInputError(`${source}: ${err.message}`);
    throw err;
  }
  return rows
    .filter((row) => row.label_0 !== 0.5)
    .map((row) => {
      const [winner, loser] = row.label_0 === 1 ? [row.image_0!, row.image_1!] : [row.image_1!, row.image_0!];
      return { row, winner, loser };
    });
}

/**
 * The preference pairs of a parquet at the size its images have, which must be one size for all;
 * `source` names the artifact in errors (TrainingInputError).
 */
export async function readPreferencePairs(bytes: Uint8Array, source: string): Promise<PreferenceDataset> {
  const pairs: PreferencePair[] = [];
  let size: { width: number; height: number } | undefined;
  for (const { row, winner, loser } of await decodedPairs(bytes, source)) {
    size ??= { width: winner.width, height: winner.height };
    for (const img of [winner, loser]) {
      if (img.width !== size.width || img.height !== size.height) {
        throw new TrainingInputError(
          `${source} row ${row.row}: image is ${img.width}x${img.height}, the first pair's is ` +
            `${size.width}x${size.height}; every image must have the same size`,
        );
      }
    }
    pairs.push({
      prompt: row.caption,
      winner: toModelSpace(toFloat(winner).data),
      loser: toModelSpace(toFloat(loser).data),
    });
  }
  return { height: size?.height ?? 0, width: size?.width ?? 0, channels: 3, pairs };
}

/** The preference pairs of a parquet with every image resized to `side` x `side` (a VAE's input size). */
export async function readResizedPreferencePairs(
  bytes: Uint8Array,
  source: string,
  side: number,
): Promise<PreferencePair[]> {
  return (await decodedPairs(bytes, source)).map(({ row, winner, loser }) => ({
    prompt: row.caption,
    winner: toModelSpace(resizeToFloat(winner, side, side)),
    loser: toModelSpace(resizeToFloat(loser, side, side)),
  }));
}
