/**
 * The decoded model of the last activity call, kept so that the next call with the same model (the
 * next training chunk, the next evaluation shard of that model) neither reads nor decodes it again.
 * One model at a time, because a model can take most of the memory there is.
 *
 * A model handed out is in use until its `release`; when another model replaces it meanwhile, it is
 * disposed when the last user releases it. Callers never change a model they acquired (the trainer
 * clones its start model, sampling only reads), so sharing it is safe.
 */
import type { ArtifactRef } from '../storage/artifact-store';

export interface HeldModel<T> {
  model: T;
  /** Ends this use; calling it again does nothing. */
  release: () => void;
}

export interface ModelCacheOptions<T> {
  /** Reads and decodes (and checks) the model an artifact holds. */
  load: (ref: ArtifactRef) => Promise<T>;
  /** Frees a model's tensors. */
  dispose: (model: T) => void;
}

interface Entry<T> {
  sha256: string;
  loading: Promise<T>;
  users: number;
  stale: boolean;
}

export class ModelCache<T> {
  private entry?: Entry<T>;

  constructor(private readonly options: ModelCacheOptions<T>) {}

  /**
   * The model `ref` holds, loaded once however many callers ask at the same time. A failed load is
   * not kept: the next call tries again.
   */
  async acquire(ref: ArtifactRef): Promise<HeldModel<T>> {
    let entry = this.entry;
    if (entry === undefined || entry.sha256 !== ref.sha256) {
      // The old model goes first, so two large models are never held at once for long.
      if (entry !== undefined) this.retire(entry);
      entry = { sha256: ref.sha256, loading: this.options.load(ref), users: 0, stale: false };
      this.entry = entry;
    }
    const held = entry;
    // Counted before waiting, so a retire during the load cannot dispose it under this caller.
    held.users++;
    let model: T;
    try {
      model = await held.loading;
    } catch (err) {
      held.users--;
      if (this.entry === held) this.entry = undefined;
      throw err;
    }
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.stale && held.users === 0) this.options.dispose(model);
      },
    };
  }

  /** Disposes the cached model now if nobody uses it, else when its last user releases it. */
  clear(): void {
    if (this.entry !== undefined) this.retire(this.entry);
  }

  private retire(entry: Entry<T>): void {
    if (this.entry === entry) this.entry = undefined;
    entry.stale = true;
    if (entry.users === 0)
      entry.loading.then(
        (model) => this.options.dispose(model),
        () => undefined,
      );
  }
}
