/**
 * JSON with object keys sorted at every level, so equal values always serialize equally (config
 * hashes, cache keys, the settings a checkpoint was written with). Absent (`undefined`) fields are
 * left out, so an optional setting that is not set leaves every hash as it was.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}
