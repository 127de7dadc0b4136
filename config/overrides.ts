/**
 * `--set path=value` overrides of a JSON config: `dro.margin=0`, `seed=3`, `eval.baselines=["base"]`.
 * The value is JSON when it parses as JSON, else a bare string. Overrides apply to the file's JSON
 * before validation, so an override is checked exactly like the file (a wrong path or value is a
 * config error naming its JSON path).
 */

/** An assignment that is not `path=value`, or whose path runs through a non-object. */
export class OverrideError extends Error {
  override name = 'OverrideError';
}

/** Keys that would reach Object.prototype rather than the config. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Sets `value` at dotted `path` of a plain object, creating sections on the way. */
export function applyOverride(target: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new OverrideError(`--set ${assignment}: expected path=value`);
  const keys = assignment.slice(0, eq).split('.');
  if (keys.some((k) => k === '' || FORBIDDEN_KEYS.has(k)))
    throw new OverrideError(`--set ${assignment}: invalid path '${assignment.slice(0, eq)}'`);
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new OverrideError(`--set ${assignment}: '${key}' is not a section`);
    }
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}
