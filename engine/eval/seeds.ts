/**
 * Seed schedules of the evaluation images. Every method is sampled with the same seed for the same
 * (prompt, image) slot, so methods are compared on matched initial noise, and no two slots of one
 * evaluation share a seed.
 *
 * GenEval:   seed = root + promptIndex * imagesPerPrompt + j,  j = 0 .. imagesPerPrompt - 1
 *            (prompt-major: prompt 0 takes root .. root + 3, prompt 1 root + 4 .. root + 7, ...)
 * Win rates: seed = root + promptIndex + i * P,  i = 0 .. samples - 1, P = number of prompts
 *            (sample-major: the first image of every prompt, then the second, ...; the paper's schedule)
 */

function checkSlot(name: string, value: number, bound: number, boundName: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= bound)
    throw new RangeError(`${name} must be an integer in [0, ${boundName}) = [0, ${bound}), got ${value}`);
}

function checkRoot(root: number): void {
  if (!Number.isSafeInteger(root) || root < 0)
    throw new RangeError(`root seed must be a non-negative integer, got ${root}`);
}

/** Seed of GenEval image `j` of prompt `promptIndex` (default 4 images per prompt, as GenEval). */
export function genevalSeed(root: number, promptIndex: number, j: number, imagesPerPrompt = 4): number {
  checkRoot(root);
  if (!Number.isInteger(imagesPerPrompt) || imagesPerPrompt < 1)
    throw new RangeError(`imagesPerPrompt must be a positive integer, got ${imagesPerPrompt}`);
  checkSlot('promptIndex', promptIndex, Number.MAX_SAFE_INTEGER, 'MAX_SAFE_INTEGER');
  checkSlot('j', j, imagesPerPrompt, 'imagesPerPrompt');
  return root + promptIndex * imagesPerPrompt + j;
}

/** Seed of win-rate sample `i` of prompt `promptIndex` out of `P` prompts: root + promptIndex + i * P. */
export function winrateSeed(root: number, promptIndex: number, i: number, P: number): number {
  checkRoot(root);
  if (!Number.isInteger(P) || P < 1)
    throw new RangeError(`P (number of prompts) must be a positive integer, got ${P}`);
  checkSlot('promptIndex', promptIndex, P, 'P');
  checkSlot('i', i, Number.MAX_SAFE_INTEGER, 'MAX_SAFE_INTEGER');
  return root + promptIndex + i * P;
}

/**
 * GenEval's image layout: `<promptIndex, 5 digits>/samples/<j, 5 digits>.png` under the output folder,
 * next to a `metadata.jsonl` per prompt folder (GenEval's generation script writes the same tree).
 */
export function genevalImagePath(promptIndex: number, j: number): string {
  return `${String(promptIndex).padStart(5, '0')}/samples/${String(j).padStart(5, '0')}.png`;
}
