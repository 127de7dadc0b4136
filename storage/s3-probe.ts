/**
 * One request to an S3 endpoint before a run starts anything, answered in words: a garbage or
 * plain-HTTP endpoint otherwise surfaces only after the server and workers started, through the
 * SDK's retries, as a parser message about XML or HTTP framing.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3ArtifactStore, mapS3Error, type S3StoreOptions } from './s3-store';
import { StoreError } from './errors';

interface RawResponse {
  statusCode?: number;
  headers?: Record<string, string | undefined>;
}

interface ProbeErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $response?: RawResponse;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** The first line of a message, bounded, so an HTML page answered as an error stays one line. */
function firstLine(text: string, max = 160): string {
  const line = text.split('\n')[0]!.trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

const TLS_FAILURE = /wrong version number|packet length too long|unknown protocol|EPROTO|ERR_SSL/i;

/** The TLS failure's own words (openssl's reason), without the library's file and line. */
function tlsReason(err: ProbeErrorShape): string | undefined {
  const text = `${err.code ?? ''} ${err.message ?? ''}`;
  if (!TLS_FAILURE.test(text)) return undefined;
  return (
    /wrong version number|packet length too long|unknown protocol/i.exec(text)?.[0] ?? err.code ?? 'EPROTO'
  );
}

/** What the endpoint answered, in words. */
export function describeProbeFailure(err: unknown, endpoint: string, bucket: string): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ProbeErrorShape;
  const cause = (e.cause ?? {}) as ProbeErrorShape;
  const tls = tlsReason(e) ?? tlsReason(cause);
  if (tls !== undefined)
    return `${endpoint} did not complete a TLS handshake (${tls}); if it serves plain HTTP, write the endpoint with http://`;
  if (/Parse Error: Expected HTTP|HPE_/i.test(`${e.message ?? ''} ${cause.message ?? ''} ${e.code ?? ''}`))
    return `${endpoint} answered something that is not HTTP (${firstLine(e.message ?? '')}); is it an S3 endpoint, and is the scheme right (https:// for TLS)?`;
  const status = e.$response?.statusCode ?? e.$metadata?.httpStatusCode;
  const mapped = mapS3Error(err, { endpoint, bucket });
  if (mapped instanceof StoreError) return mapped.message;
  if (status !== undefined) {
    const type = e.$response?.headers?.['content-type'];
    return `${endpoint} answered HTTP ${status}${type ? ` (${type})` : ''}, which is not an S3 response (${firstLine(e.message ?? e.name ?? '')})`;
  }
  return `${endpoint}: ${firstLine(e.message ?? e.name ?? String(err))}`;
}

/**
 * Lists one key of the bucket with a single attempt and a short timeout. Returns undefined when
 * the endpoint answered as S3, else a sentence naming the endpoint and what it answered.
 */
export async function probeS3Endpoint(
  options: S3StoreOptions,
  timeoutMs = 5000,
): Promise<string | undefined> {
  const store = new S3ArtifactStore({ ...options, maxAttempts: 1, connectionTimeoutMs: timeoutMs });
  try {
    const listing = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, MaxKeys: 1 }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
    // Any web server answers 200 to a GET; only S3 names the bucket it listed.
    if (listing.Name !== store.bucket)
      return `${store.endpoint} answered HTTP ${listing.$metadata.httpStatusCode ?? '?'} but not with a listing of bucket ${store.bucket}; is it an S3 endpoint?`;
    return undefined;
  } catch (err) {
    if ((err as ProbeErrorShape).name === 'AbortError' || (err as ProbeErrorShape).name === 'TimeoutError')
      return `${store.endpoint} did not answer within ${timeoutMs / 1000} s`;
    return describeProbeFailure(err, store.endpoint, store.bucket);
  } finally {
    store.destroy();
  }
}
