/**
 * The Temporal Runtime (one per process), installed with a logger that sends SDK log entries,
 * including those from the native core, to the project's pino logger.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import type { Logger } from '../infra/logger';
import { logger as rootLogger } from '../infra/logger';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

type PinoLevel = (typeof PINO_LEVEL)[LogLevel];

// The SDK's own lifecycle chatter (worker state changes, poller setup) is debug detail for us;
// workflow and activity log calls keep their level.
const SDK_COMPONENTS = new Set(['worker', 'core']);
// Expected by design: the compute worker runs activities only.
const EXPECTED_WARNINGS = [/^No workflows registered/];

export interface PinoTemporalLoggerOptions {
  /** Log every INFO entry at debug (e.g. the workflow bundler's webpack report). Default: false. */
  infoAsDebug?: boolean;
}

/** Adapts a pino logger to the SDK's logger interface; symbol-keyed metadata is dropped. */
export class PinoTemporalLogger implements TemporalLogger {
  constructor(
    private readonly target: Logger,
    private readonly options: PinoTemporalLoggerOptions = {},
  ) {}

  private levelFor(level: LogLevel, message: string, meta: LogMetadata | undefined): PinoLevel {
    if (level === 'WARN' && EXPECTED_WARNINGS.some((re) => re.test(message))) return 'debug';
    if (level === 'INFO' && (this.options.infoAsDebug || SDK_COMPONENTS.has(String(meta?.sdkComponent))))
      return 'debug';
    return PINO_LEVEL[level];
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) fields[k] = v;
    this.target[this.levelFor(level, message, meta)](fields, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

export interface InstallRuntimeOptions {
  /** Destination of SDK logs. Default: the process-wide logger. */
  logger?: Logger;
  /**
   * Signals on which the runtime shuts workers down. Default: the SDK's (SIGINT, SIGTERM, ...).
   * Pass `[]` when the caller handles signals itself.
   */
  shutdownSignals?: NodeJS.Signals[];
}

let installed: Runtime | undefined;
let sdkMetricsAddress: string | undefined;

/**
 * Makes the runtime serve the SDK's own metrics (pollers, task slots, activity and workflow task
 * latencies and failures) in the Prometheus format on `bindAddress`. The runtime binds it when it
 * is installed, so this must come first; workers/metrics-endpoint.ts serves them with ours.
 */
export function exportSdkMetrics(bindAddress: string): void {
  if (installed)
    throw new Error('the Temporal runtime is already installed; set up its metrics before any worker');
  sdkMetricsAddress = bindAddress;
}

/**
 * Installs the Runtime on first call; later calls return the current one (their options are
 * ignored). Call it right before the first Worker or NativeConnection, not earlier: an installed
 * runtime with nothing using it keeps the process alive. When its last connection closes, the
 * SDK shuts it down and re-creates it on demand with the same options.
 */
export function installRuntime(options: InstallRuntimeOptions = {}): Runtime {
  if (installed) return Runtime.instance();
  const target = (options.logger ?? rootLogger()).child({ component: 'temporal-sdk' });
  installed = Runtime.install({
    logger: new PinoTemporalLogger(target),
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(sdkMetricsAddress !== undefined && { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } }),
    },
    ...(options.shutdownSignals ? { shutdownSignals: options.shutdownSignals } : {}),
  });
  return installed;
}
