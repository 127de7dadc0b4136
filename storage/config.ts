/**
 * Storage configuration: where artifacts live. The local store is the default; S3 (or any
 * S3-compatible server) is selected with `kind: 's3'`. Credentials never appear here: they come from
 * the standard AWS chain (environment, shared profile, instance or container role).
 */
import { z } from 'zod';
import { S3_BUCKET_NAME, validatePrefix } from './uri';

export const LocalStorageConfig = z
  .strictObject({
    /** Selects the local filesystem store. */
    kind: z.literal('local'),
    /** Directory holding artifacts. Default: `<state dir>/artifacts` (`.dro/artifacts`, or `$DRO_STATE_DIR/artifacts`). */
    root: z.string().min(1).optional().describe('Artifact directory; default <state dir>/artifacts'),
  })
  .describe('Artifacts on the local filesystem');
export type LocalStorageConfig = z.infer<typeof LocalStorageConfig>;

export const S3StorageConfig = z
  .strictObject({
    /** Selects the S3 store. */
    kind: z.literal('s3'),
    /** Bucket name; must already exist. No default. */
    bucket: z
      .string()
      .regex(S3_BUCKET_NAME, 'must be a valid S3 bucket name (3-63 of a-z 0-9 . -)')
      .describe('Bucket name; must already exist'),
    /** Key prefix for every artifact, without leading or trailing '/'. Default: '' (bucket root). */
    prefix: z
      .string()
      .refine(
        (p) => {
          try {
            validatePrefix(p);
            return true;
          } catch {
            return false;
          }
        },
        {
          message:
            "must be '' or '/'-separated segments of [A-Za-z0-9._=+@,~-], without leading or trailing '/'",
        },
      )
      .default('')
      .describe("Key prefix without leading or trailing '/'; default ''"),
    /** Endpoint URL of an S3-compatible server, e.g. `http://127.0.0.1:7070`. Default: AWS S3 for the region. */
    endpoint: z.url().optional().describe('S3-compatible endpoint URL; default AWS S3'),
    /** Region. Default: `$AWS_REGION`, else `$AWS_DEFAULT_REGION`, else `us-east-1`. */
    region: z
      .string()
      .min(1)
      .optional()
      .describe('Region; default $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1'),
    /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint`; most self-hosted servers need true. Default: false. */
    forcePathStyle: z.boolean().default(false).describe('Path-style bucket addressing; default false'),
    /** Multipart upload part size in MiB (S3 allows 5-5120). Default: 8. */
    partSizeMiB: z
      .number()
      .int()
      .min(5)
      .max(5120)
      .default(8)
      .describe('Multipart part size in MiB; default 8'),
  })
  .describe('Artifacts in an S3 bucket');
export type S3StorageConfig = z.infer<typeof S3StorageConfig>;

/** Where artifacts are stored. Default (in the run config): `{ kind: 'local' }`. */
export const StorageConfig = z.discriminatedUnion('kind', [LocalStorageConfig, S3StorageConfig]);
export type StorageConfig = z.infer<typeof StorageConfig>;
export type StorageConfigInput = z.input<typeof StorageConfig>;
