/**
 * The project's custom search attributes, shared by workflows, the CLI and the server setup
 * (infra/temporal-server.ts registers them on the embedded server).
 */
import { defineSearchAttributeKey } from '@temporalio/common';

/** The pipeline run a workflow belongs to. */
export const DRO_RUN_ID = defineSearchAttributeKey('DroRunId', 'KEYWORD');
/** Where a workflow is, e.g. `ranking` or `dro:1280/25600`. */
export const DRO_STAGE = defineSearchAttributeKey('DroStage', 'KEYWORD');
/** SHA-256 of the part of the run's config that determines its results (config/config-hash.ts). */
export const DRO_CONFIG_HASH = defineSearchAttributeKey('DroConfigHash', 'KEYWORD');
/** The config's `name`. */
export const DRO_CONFIG_NAME = defineSearchAttributeKey('DroConfigName', 'KEYWORD');
/** The git commit of the code that started the run, or `unknown`. */
export const DRO_GIT_COMMIT = defineSearchAttributeKey('DroGitCommit', 'KEYWORD');

export const DRO_SEARCH_ATTRIBUTE_KEYS = [
  DRO_RUN_ID,
  DRO_STAGE,
  DRO_CONFIG_HASH,
  DRO_CONFIG_NAME,
  DRO_GIT_COMMIT,
] as const;
