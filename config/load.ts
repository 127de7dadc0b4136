import { BoundedReadError, readFileBounded } from '../storage/bounded-read';
import type { z } from 'zod';
import { applyOverride, OverrideError } from './overrides';
import { PipelineConfig } from './schemas';

/** One problem in a config file, located by its JSON path (e.g. `$.dro.margin`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A config that failed to load; carries every problem, not just the first. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${source}: invalid config\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
  }
}

export function jsonPath(path: readonly PropertyKey[]): string {
  return (
    '$' +
    path
      .map((key) =>
        typeof key === 'number'
          ? `[${key}]`
          : /^[A-Za-z_$][\w$]*$/.test(String(key))
            ? `.${String(key)}`
            : `[${JSON.stringify(String(key))}]`,
      )
      .join('')
  );
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  return issue.message;
}

/** Validates an already-parsed value; `source` names it in errors. */
export function parseConfig(value: unknown, source = 'config'): PipelineConfig {
  const result = PipelineConfig.safeParse(value);
  if (result.success) return result.data;
  throw new ConfigError(
    source,
    result.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: describeIssue(issue) })),
  );
}

/**
 * Largest config file read (16 MiB). A config travels as the workflow's input, which Temporal
 * limits to 2 MiB; a bigger file is refused before it is read into memory.
 */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/**
 * Reads, parses and validates a JSON config file; `overrides` (`path=value`, as `dro run --set`)
 * apply to the file's JSON before validation.
 */
export function loadConfigFile(file: string, overrides: readonly string[] = []): PipelineConfig {
  let text: string;
  try {
    text = new TextDecoder().decode(readFileBounded(file, MAX_CONFIG_BYTES, { what: 'config' }));
  } catch (err) {
    if (!(err instanceof BoundedReadError)) throw err;
    const message =
      err.problem === 'too-large'
        ? `file is ${err.size ?? `more than ${MAX_CONFIG_BYTES}`} bytes; a config may have at most ${MAX_CONFIG_BYTES}`
        : err.detail.replace(/^cannot read it/, 'cannot read file');
    throw new ConfigError(file, [{ path: '$', message }]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: '$', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  if (overrides.length === 0) return parseConfig(value, file);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(file, [{ path: '$', message: 'a config must be a JSON object' }]);
  const source = `${file} with ${overrides.map((o) => `--set ${o}`).join(' ')}`;
  for (const o of overrides) {
    try {
      applyOverride(value as Record<string, unknown>, o);
    } catch (err) {
      if (err instanceof OverrideError) throw new ConfigError(source, [{ path: '$', message: err.message }]);
      throw err;
    }
  }
  return parseConfig(value, source);
}

/** The embedded defaults: what `dro run` uses without a config file. */
export function defaultConfig(): PipelineConfig {
  return parseConfig({}, 'defaults');
}
