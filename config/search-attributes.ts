/**
 * The project's custom search attributes, shared by workflows, the CLI and the server setup
 * (infra/temporal-server.ts registers them on the embedded server).
 */
import { defineSearchAttributeKey } from '@temporalio/common';

/** The pipeline run a workflow belongs to. */
export const DRO_RUN_ID = defineSearchAttributeKey('DroRunId', 'KEYWORD');
/** Where a workflow is, e.g. `ranking` or `dro:1280/25600`. */
export const DRO_STAGE = defineSearchAttributeKey('DroStage', 'KEYWORD');
/** SHA-256 of the run's parsed config. */
export const DRO_CONFIG_HASH = defineSearchAttributeKey('DroConfigHash', 'KEYWORD');

export const DRO_SEARCH_ATTRIBUTE_KEYS = [DRO_RUN_ID, DRO_STAGE, DRO_CONFIG_HASH] as const;
