/**
 * Storage configuration: where artifacts live. The local store is the default; S3 (or any
 * S3-compatible server) is selected with `kind: 's3'`. Credentials never appear here: they come from
 * the standard AWS chain (environment, shared profile, instance or container role).
 */
import { z } from 'zod';
import { S3_BUCKET_NAME, validatePrefix } from './uri';

/**
 * Why `name` is not a valid S3 bucket name under AWS's general-purpose bucket rules, or undefined
 * when it is: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit, no two adjacent
 * periods, not an IP address, and none of the prefixes and suffixes AWS reserves.
 */
export function s3BucketNameProblem(name: string): string | undefined {
  if (!S3_BUCKET_NAME.test(name))
    return 'must be 3-63 of a-z 0-9 . - and start and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent periods';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'must not be formatted as an IP address';
  const prefix = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((p) => name.startsWith(p));
  if (prefix) return `must not start with the reserved prefix '${prefix}'`;
  const suffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((x) => name.endsWith(x));
  if (suffix) return `must not end with the reserved suffix '${suffix}'`;
  return undefined;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export const LocalStorageConfig = z
  .strictObject({
    /** Selects the local filesystem store. */
    kind: z.literal('local'),
    /** Directory holding artifacts. Default: `<state dir>/artifacts` (`.dro/artifacts`, or `$DRO_STATE_DIR/artifacts`). */
    root: z
      .string()
      .min(1)
      .max(4096)
      .refine((r) => !CONTROL_CHARS.test(r), {
        message: 'must not contain control characters (NUL included)',
      })
      .optional()
      .describe('Artifact directory; default <state dir>/artifacts'),
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
      .superRefine((name, ctx) => {
        const problem = s3BucketNameProblem(name);
        if (problem) ctx.addIssue({ code: 'custom', message: `not a valid S3 bucket name: ${problem}` });
      })
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
    endpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .optional()
      .describe('S3-compatible endpoint URL; default AWS S3'),
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
