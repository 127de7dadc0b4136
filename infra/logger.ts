import pino from 'pino';

/** Fields that may carry credentials; their values never reach a log line. */
export const REDACT_PATHS = [
  'accessKeyId',
  'secretAccessKey',
  'sessionToken',
  'password',
  'token',
  'authorization',
  '*.accessKeyId',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.password',
  '*.token',
  '*.authorization',
  'credentials',
  '*.credentials',
];

export type Logger = pino.Logger;

/** Errors (with their cause chain) as `{type, message, stack, cause...}`; anything else as is. */
function errorSerializer(value: unknown): unknown {
  return value instanceof Error ? pino.stdSerializers.errWithCause(value) : value;
}

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  /**
   * Destination stream (tests capture output through it). Defaults to stderr: stdout carries a
   * command's own output (tables, `--json`), logs never mix into it.
   */
  destination?: pino.DestinationStream;
}

/** The project's root logger: JSON lines for machines, readable lines in a terminal, on stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.DRO_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (process.stderr.isTTY === true && !options.destination);
  const base: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // The Temporal SDK logs failures under `error` ("Activity failed", { error }); pino's default
    // serializer covers only `err`, and JSON.stringify of an Error keeps neither message nor stack.
    serializers: { err: errorSerializer, error: errorSerializer },
    base: { pid: process.pid },
  };
  if (pretty) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', destination: 2 },
      },
    });
  }
  return pino(base, options.destination ?? pino.destination({ dest: 2, sync: true }));
}

let root: Logger | undefined;

/** Shared process-wide logger, created on first use. */
export function logger(): Logger {
  root ??= createLogger();
  return root;
}

/** Makes `log` the process-wide logger: a command decides where the engine's own entries go. */
export function setRootLogger(log: Logger): void {
  root = log;
}

/** Context carried by child loggers of Temporal activities and workflows. */
export interface RunContext {
  runId?: string;
  workflowId?: string;
  activity?: string;
  attempt?: number;
}

export function childLogger(parent: Logger, context: RunContext): Logger {
  return parent.child(Object.fromEntries(Object.entries(context).filter(([, v]) => v !== undefined)));
}
