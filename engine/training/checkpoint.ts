/**
 * The complete training state as one safetensors blob: every tensor of the state under a prefixed
 * name, every scalar (step, RNG states, data position, history) as JSON in `__metadata__.state`.
 * Float32 values are stored exactly, so a restored run continues bit for bit.
 */
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../io/safetensors';
import { TrainingInputError } from './errors';

export const CHECKPOINT_FORMAT = 'dro-pipeline/training-state@1';

export interface CheckpointContents {
  /** JSON-safe scalars. */
  state: Record<string, unknown>;
  /** Named groups of flat float32 tensors: group -> name -> values with shape. */
  groups: Map<string, Map<string, TensorToWrite>>;
}

export function encodeCheckpoint(contents: CheckpointContents): Uint8Array {
  const tensors = new Map<string, TensorToWrite>();
  for (const [group, entries] of contents.groups) {
    for (const [name, t] of entries) tensors.set(`${group}/${name}`, t);
  }
  return serializeSafetensors(tensors, {
    metadata: { format: CHECKPOINT_FORMAT, state: JSON.stringify(contents.state) },
  });
}

export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): CheckpointContents {
  const file = parseSafetensors(bytes, source);
  if (file.metadata?.format !== CHECKPOINT_FORMAT) {
    throw new TrainingInputError(
      `${source} is not a training checkpoint (format '${file.metadata?.format ?? 'none'}')`,
    );
  }
  const groups = new Map<string, Map<string, TensorToWrite>>();
  for (const [full, t] of file.tensors) {
    const cut = full.indexOf('/');
    const group = full.slice(0, cut);
    const name = full.slice(cut + 1);
    if (!groups.has(group)) groups.set(group, new Map());
    groups.get(group)!.set(name, { shape: t.shape, data: t.data });
  }
  return { state: JSON.parse(file.metadata.state ?? '{}') as Record<string, unknown>, groups };
}
