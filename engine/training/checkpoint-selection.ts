/**
 * Which of a stage's checkpoints to keep and which to resume from, decided from their keys alone
 * (`.../step-<7 digits>.safetensors`). Keys sort by step because the step is zero-padded.
 */

const CHECKPOINT_NAME = /step-(\d+)\.safetensors$/;

/** `step-<7 digits>.safetensors`: the file name of the checkpoint written at micro-step `step`. */
export function checkpointFileName(step: number): string {
  return `step-${String(step).padStart(7, '0')}.safetensors`;
}

/** The micro-step a checkpoint key names, or undefined for any other key. */
export function checkpointStepOf(key: string): number | undefined {
  const m = CHECKPOINT_NAME.exec(key);
  return m ? Number(m[1]) : undefined;
}

/** The checkpoint keys among `keys`, oldest first. */
export function checkpointKeys(keys: readonly string[]): string[] {
  return keys.filter((k) => CHECKPOINT_NAME.test(k)).sort();
}

/** The checkpoints to delete so that only the `keep` newest remain; none when `keep` <= 0. */
export function staleCheckpoints(keys: readonly string[], keep: number): string[] {
  if (keep <= 0) return [];
  const sorted = checkpointKeys(keys);
  return sorted.slice(0, Math.max(0, sorted.length - keep));
}

/**
 * The checkpoints a stage may continue from, newest first: those at or before `maxStep` and, when
 * `minStep` is given, not before it (a resume never goes back past a checkpoint already named).
 */
export function resumeCandidates(
  keys: readonly string[],
  maxStep: number,
  minStep = -Infinity,
): { key: string; step: number }[] {
  const out: { key: string; step: number }[] = [];
  for (const key of checkpointKeys(keys).reverse()) {
    const step = checkpointStepOf(key)!;
    if (step > maxStep || step < minStep) continue;
    out.push({ key, step });
  }
  return out;
}
