/**
 * Multi-host faults: the pipeline's processes on separate (virtual) hosts, with links cut under a
 * running DRO training.
 *
 * Topology (Linux network namespaces behind a bridge in a private "hub" namespace, 10.231.0.0/24,
 * built and removed by this file; see `./topology.ts`):
 *
 *   svc  10.231.0.1   Temporal dev server (:7233, bound to 0.0.0.0 of svc) and versitygw (:7070)
 *   ctl  10.231.0.2   the client and the cpu-queue worker (workflows), one process (`./control.ts`)
 *   w1   10.231.0.11  gpu-queue training worker (`test/harness/training-worker.ts`)
 *   w2   10.231.0.12  gpu-queue training worker
 *
 * The test process itself stays on the host network and talks to the control process over a pipe.
 * Artifacts live in the S3 server on svc; every run uses the same tiny DRO config, so each ends
 * with the model digest (sha256 of the final model bundle, read back from S3) of the
 * uninterrupted baseline run (run twice; the second, on warm workers, is the timing reference).
 *
 *   1. Worker cut: once a worker has committed a mid-chunk checkpoint, its link is cut for good.
 *      Its chunk's heartbeat times out, the other worker resumes from that checkpoint, and the run
 *      ends with the baseline digest. Prints the stall from the cut to the other worker's resume
 *      and first progress, and the wall time against the baseline.
 *   2. Frontend partition: the services host's link is cut for 30 s mid-run (workers and client
 *      lose Temporal and S3 at once), then restored; everyone reconnects and the run completes.
 *   3. S3 outage: versitygw is killed mid-run (no iptables/nft is assumed on the machine), the
 *      chunk fails and is retried with backoff, the failure names the endpoint; versitygw is
 *      started again on the same data and the run completes.
 *
 * Run as root: `npm run test:netns`. Skipped with a message when not root or without `ip netns`.
 * DRO_NETNS_SHORT=1 runs scenario 1 only with the smallest training (for CI). Namespaces are
 * named `dronetns-<pid>-<random>-*`; all are removed at the end, and a later run removes those of
 * a run that was killed outright.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TrainingWorkflowInput } from '../../contracts/training';
import { TEMPORAL_CLI, VERSITYGW } from '../../infra/binaries';
import { ensureBinary } from '../../infra/go-binary';
import type { ArtifactRef } from '../../storage';
import { tinyDroSettings } from '../harness/training-worker';
import type { DescribeResult, ResultWithDigest } from './control';
import {
  Control,
  startTemporal,
  startTrainingWorker,
  startVersitygw,
  type HostProcess,
  type LogEntry,
  type S3OnHost,
  type TemporalOnHost,
} from './processes';
import { createTopology, netnsUnavailable, sweepStaleNamespaces, type Topology } from './topology';

const SHORT = process.env.DRO_NETNS_SHORT === '1';
const STEPS = SHORT ? 8 : 12;
const STEPS_PER_ACTIVITY = STEPS / 2;
/** Short, so a lost chunk is noticed quickly; long enough that a busy machine's step fits in it. */
const HEARTBEAT_TIMEOUT_S = 4;
const PARTITION_S = 30;
const WORKERS = ['w1', 'w2'] as const;
type WorkerHost = (typeof WORKERS)[number];

const unavailable = netnsUnavailable();

const seconds = (ms: number): number => Number((ms / 1000).toFixed(1));

/** The first log entry of any of `procs` that matches, polling (the processes log independently). */
async function firstLog(
  procs: HostProcess[],
  match: (entry: LogEntry) => boolean,
  timeoutMs: number,
  what: string,
): Promise<{ proc: HostProcess; entry: LogEntry }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const proc of procs) {
      const entry = proc.logs.find(match);
      if (entry) return { proc, entry };
    }
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${timeoutMs / 1000} s\n${procs.map((p) => p.tail()).join('\n')}`);
    }
    await sleep(50);
  }
}

describe(
  'multi-host faults (network namespaces)',
  {
    skip: unavailable && `network-namespace test skipped: ${unavailable}`,
    timeout: SHORT ? 900_000 : 1_800_000,
  },
  () => {
    let topo: Topology | undefined;
    let dir: string | undefined;
    let temporal: TemporalOnHost | undefined;
    let s3: S3OnHost | undefined;
    let control: Control | undefined;
    const workers: Partial<Record<WorkerHost, HostProcess>> = {};
    let versitygwBinary = '';
    const s3Credentials = {
      accessKeyId: 'droNetnsAccess',
      secretAccessKey: `droNetnsSecret${randomBytes(8).toString('hex')}`,
    };
    let env: { TEMPORAL_ADDRESS: string; DRO_TEST_STORE: string };
    let base: Omit<TrainingWorkflowInput, 'runId'>;
    let baseline: { digest: string; ms: number } | undefined;
    const suffix = randomBytes(3).toString('hex');

    before(async () => {
      const swept = sweepStaleNamespaces();
      if (swept.length > 0) console.log(`removed namespaces of an earlier killed run: ${swept.join(', ')}`);
      const temporalBinary = (await ensureBinary(TEMPORAL_CLI)).path;
      versitygwBinary = (await ensureBinary(VERSITYGW)).path;
      topo = createTopology({ svc: 1, ctl: 2, w1: 11, w2: 12 });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-netns-'));
      fs.mkdirSync(path.join(dir, 's3'));
      temporal = startTemporal(topo, 'svc', temporalBinary, path.join(dir, 'temporal.db'));
      s3 = await startVersitygw(topo, 'svc', versitygwBinary, path.join(dir, 's3'), s3Credentials);
      env = {
        TEMPORAL_ADDRESS: temporal.address,
        DRO_TEST_STORE: JSON.stringify({
          kind: 's3',
          bucket: 'dro-netns',
          prefix: 'netns',
          endpoint: s3.endpoint,
          region: 'us-east-1',
          forcePathStyle: true,
          credentials: s3Credentials,
        }),
      };
      // The control process waits for the dev server to answer and creates the bucket.
      control = await Control.start(topo, 'ctl', env);
      const started = await Promise.all(WORKERS.map((w) => startTrainingWorker(topo!, w, env)));
      WORKERS.forEach((w, i) => (workers[w] = started[i]));
      const inputs = await control.call<{ startModel: ArtifactRef; data: ArtifactRef }>('inputs');
      base = {
        stage: 'dro',
        settings: tinyDroSettings(STEPS),
        ...inputs,
        stepsPerActivity: STEPS_PER_ACTIVITY,
        heartbeatSeconds: 1,
        heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_S,
      };
    });

    after(async () => {
      try {
        await control?.stop();
        for (const w of Object.values(workers)) await w?.kill();
        await s3?.proc.stop();
        await temporal?.proc.stop();
      } finally {
        topo?.teardown();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    const allWorkers = (): HostProcess[] => WORKERS.map((w) => workers[w]!).filter((w) => w.running);

    async function start(name: string): Promise<{ workflowId: string; t0: number }> {
      const workflowId = `netns-${name}-${suffix}`;
      const t0 = Date.now();
      await control!.call('start', { workflowId, input: { ...base, runId: `${name}-${suffix}` } });
      return { workflowId, t0 };
    }

    /** Waits for a committed checkpoint inside the first chunk: a point where a resume is visible. */
    function midChunkCheckpoint(since: number) {
      return firstLog(
        allWorkers(),
        (e) =>
          e.msg === 'checkpoint written' &&
          e.time >= since &&
          typeof e.step === 'number' &&
          e.step > 0 &&
          e.step < STEPS_PER_ACTIVITY,
        180_000,
        'mid-chunk checkpoint',
      );
    }

    function result(workflowId: string): Promise<ResultWithDigest> {
      return control!.call<ResultWithDigest>('result', { workflowId });
    }

    test('baseline: an uninterrupted run on the multi-host network', async () => {
      // Twice: the first run pays for cold workers (TF.js kernels, first model load), so the second
      // is the one the faulted runs are timed against; both must give the same model.
      const runs: Array<{ digest: string; ms: number }> = [];
      for (const name of ['baseline-cold', 'baseline']) {
        const { workflowId, t0 } = await start(name);
        const out = await result(workflowId);
        assert.equal(out.result.steps, STEPS);
        assert.equal(out.modelDigest, out.result.model.sha256, 'the stored model does not match its ref');
        runs.push({ digest: out.modelDigest, ms: Date.now() - t0 });
      }
      assert.equal(runs[1]!.digest, runs[0]!.digest, 'two uninterrupted runs gave different models');
      baseline = runs[1]!;
      console.log(
        JSON.stringify({
          scenario: 'baseline',
          steps: STEPS,
          coldRunS: seconds(runs[0]!.ms),
          runS: seconds(baseline.ms),
          digest: baseline.digest,
        }),
      );
    });

    test('1: a training worker cut off mid-chunk; the other resumes from its checkpoint, same digest', async (t) => {
      if (!baseline) return t.skip('needs the baseline run');
      const { workflowId, t0 } = await start('worker-cut');
      const outcome = result(workflowId);
      outcome.catch(() => undefined);

      const { proc: trainer, entry: checkpoint } = await midChunkCheckpoint(t0);
      const cutHost = WORKERS.find((w) => workers[w] === trainer)!;
      const other = workers[WORKERS.find((w) => w !== cutHost)!]!;
      topo!.cut(cutHost);
      const cutAt = Date.now();

      const resumed = await other.waitForLog(
        (e) => e.msg === 'training chunk started' && e.time >= cutAt,
        120_000,
        'resumed chunk on the other worker',
      );
      const progressed = await other.waitForLog(
        (e) => (e.msg === 'training progress' || e.msg === 'checkpoint written') && e.time >= resumed.time,
        120_000,
        'progress on the other worker',
      );
      const out = await outcome;
      const ms = Date.now() - t0;

      // Retried after the heartbeat timeout, from the cut worker's checkpoint rather than from scratch.
      assert.ok((resumed.attempt as number) >= 2, JSON.stringify(resumed));
      assert.ok(
        resumed.restoredFrom === 'heartbeat' || resumed.restoredFrom === 'store',
        JSON.stringify(resumed),
      );
      assert.equal(resumed.fromStep, checkpoint.step, JSON.stringify(resumed));
      assert.equal(out.result.steps, STEPS);
      assert.equal(out.modelDigest, baseline.digest, 'the model differs from the uninterrupted run');
      console.log(
        JSON.stringify({
          scenario: 'worker-cut',
          cutWorker: cutHost,
          cutAfterCheckpointStep: checkpoint.step,
          resumedFrom: resumed.restoredFrom,
          resumedAtStep: resumed.fromStep,
          heartbeatTimeoutS: HEARTBEAT_TIMEOUT_S,
          stallToResumeS: seconds(resumed.time - cutAt),
          stallToProgressS: seconds(progressed.time - cutAt),
          runS: seconds(ms),
          baselineS: seconds(baseline.ms),
          extraS: seconds(ms - baseline.ms),
        }),
      );

      // Later scenarios need two workers: replace the cut one (its process still holds the dead
      // attempt) and reconnect its host.
      await trainer.kill();
      topo!.restore(cutHost);
      if (!SHORT) workers[cutHost] = await startTrainingWorker(topo!, cutHost, env);
    });

    test(
      `2: the services host unreachable for ${PARTITION_S} s; workers and client reconnect`,
      { skip: SHORT && 'DRO_NETNS_SHORT=1' },
      async (t) => {
        if (!baseline) return t.skip('needs the baseline run');
        const { workflowId, t0 } = await start('partition');
        const outcome = result(workflowId);
        outcome.catch(() => undefined);

        await midChunkCheckpoint(t0);
        topo!.cut('svc');
        const cutAt = Date.now();
        await sleep(PARTITION_S * 1000);
        topo!.restore('svc');
        const restoredAt = Date.now();

        // The client answers again (a fresh request, besides the long poll waiting for the result).
        const described = await control!.call<DescribeResult>('describe', { workflowId });
        const describedAt = Date.now();
        const resumed = await firstLog(
          allWorkers(),
          (e) => e.msg === 'training chunk started' && e.time >= restoredAt,
          180_000,
          'chunk started after the partition',
        );
        const progressed = await firstLog(
          allWorkers(),
          (e) => e.msg === 'checkpoint written' && e.time >= resumed.entry.time,
          180_000,
          'checkpoint after the partition',
        );
        const out = await outcome;
        const ms = Date.now() - t0;

        assert.equal(out.result.steps, STEPS);
        assert.equal(out.modelDigest, baseline.digest, 'the model differs from the uninterrupted run');
        console.log(
          JSON.stringify({
            scenario: 'services-partition',
            partitionS: seconds(restoredAt - cutAt),
            statusAfterRestore: described.status,
            clientAnswerAfterRestoreS: seconds(describedAt - restoredAt),
            resumedOn: resumed.proc.label,
            resumedFrom: resumed.entry.restoredFrom,
            resumedAtStep: resumed.entry.fromStep,
            attempt: resumed.entry.attempt,
            restoreToResumeS: seconds(resumed.entry.time - restoredAt),
            restoreToCheckpointS: seconds(progressed.entry.time - restoredAt),
            stallFromCutS: seconds(progressed.entry.time - cutAt),
            runS: seconds(ms),
            baselineS: seconds(baseline.ms),
            extraS: seconds(ms - baseline.ms),
          }),
        );
      },
    );

    test(
      '3: the S3 endpoint down mid-run; retries name it, and the run completes once it is back',
      { skip: SHORT && 'DRO_NETNS_SHORT=1' },
      async (t) => {
        if (!baseline) return t.skip('needs the baseline run');
        const { workflowId, t0 } = await start('s3-down');
        const outcome = result(workflowId);
        outcome.catch(() => undefined);

        await midChunkCheckpoint(t0);
        await s3!.proc.kill();
        const downAt = Date.now();

        // Retried with backoff (the workflow's retry policy bounds the attempts); each failure says
        // which endpoint did not answer.
        let seen: DescribeResult | undefined;
        let failure: string | undefined;
        while (Date.now() - downAt < 90_000) {
          seen = await control!.call<DescribeResult>('describe', { workflowId });
          const failing = seen.pending.find((a) => a.lastFailure && a.attempt >= 3);
          if (failing) {
            failure = failing.lastFailure;
            break;
          }
          await sleep(1000);
        }
        assert.ok(failure, `no repeated failure while S3 was down: ${JSON.stringify(seen)}`);
        assert.ok(failure.includes(s3!.endpoint), `the failure does not name ${s3!.endpoint}: ${failure}`);
        const failingS = Date.now() - downAt;

        s3 = await startVersitygw(topo!, 'svc', versitygwBinary, path.join(dir!, 's3'), s3Credentials);
        const upAt = Date.now();
        const resumed = await firstLog(
          allWorkers(),
          (e) => e.msg === 'training chunk started' && e.time >= upAt,
          180_000,
          'chunk started after S3 came back',
        );
        const out = await outcome;
        const ms = Date.now() - t0;
        assert.equal(out.result.steps, STEPS);
        assert.equal(out.modelDigest, baseline.digest, 'the model differs from the uninterrupted run');
        console.log(
          JSON.stringify({
            scenario: 's3-down',
            downForS: seconds(upAt - downAt),
            failuresSeenAfterS: seconds(failingS),
            pending: seen?.pending,
            resumedFrom: resumed.entry.restoredFrom,
            resumedAtStep: resumed.entry.fromStep,
            upToResumeS: seconds(resumed.entry.time - upAt),
            runS: seconds(ms),
            baselineS: seconds(baseline.ms),
          }),
        );
      },
    );
  },
);
