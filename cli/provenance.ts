/**
 * What a run records about where it came from: the hash of the config that determines its results
 * (the canonical JSON of config/config-hash.ts, hashed), the package version, the git commit and
 * Node, and the search attributes that let the cluster find runs by them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson, resultConfig } from '../config/config-hash';
import type { PipelineConfig } from '../config/schemas';
import type { RunProvenance } from '../contracts/pipeline';
import { DRO_CONFIG_HASH, DRO_CONFIG_NAME, DRO_GIT_COMMIT, DRO_RUN_ID } from '../contracts/search-attributes';

/**
 * SHA-256 of what determines the run's results (config/config-hash.ts): not the cluster, store,
 * worker settings, activity chunking or name. The run's DroConfigHash.
 */
export function configHash(config: PipelineConfig): string {
  return createHash('sha256')
    .update(canonicalJson(resultConfig(config)))
    .digest('hex');
}

const PACKAGE_ROOT = path.join(__dirname, '..');

/** The git commit of this checkout, or `unknown` outside one. */
export function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

export function provenance(config: PipelineConfig): RunProvenance {
  const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  return {
    configHash: configHash(config),
    packageVersion: pkg.version,
    gitCommit: gitCommit(),
    node: process.version,
  };
}

export function searchAttributes(runId: string, config: PipelineConfig, commit = gitCommit()) {
  return [
    { key: DRO_RUN_ID, value: runId },
    { key: DRO_CONFIG_HASH, value: configHash(config) },
    { key: DRO_CONFIG_NAME, value: config.name },
    { key: DRO_GIT_COMMIT, value: commit },
  ];
}
