// Structured logs (pino, JSON lines on stderr). Each module asks for a named logger; the
// SKIFF_TRACE environment variable (comma-separated module names, or `*`) switches that module to
// trace level without raising the level of everything else — grpc-js GRPC_TRACE style.
import { pino, type Logger, type LoggerOptions, type Level } from 'pino';

const traced = new Set(
  (process.env.SKIFF_TRACE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/**
 * The root logger's options, exported so that a test can build a logger configured the same way.
 * `redact`: the CRI wrapper traces each request, and PullImage's AuthConfig carries passwords and
 * tokens; those never reach a log.
 */
export const LOG_OPTIONS: LoggerOptions = {
  base: { pid: process.pid },
  level: process.env.SKIFF_LOG_LEVEL ?? 'info',
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  redact: { paths: ['req.auth.*'], censor: '[redacted]' },
};

const root: Logger = pino(LOG_OPTIONS, pino.destination({ fd: 2, sync: true }));

const children = new Map<string, Logger>();

/** The logger of one module (`registry`, `unpack`, `cri`…). */
export function logger(module: string): Logger {
  let child = children.get(module);
  if (!child) {
    child = root.child({ module });
    if (traced.has(module) || traced.has('*')) child.level = 'trace';
    children.set(module, child);
  }
  return child;
}

/** Sets the level of every logger that is not traced. */
export function setLogLevel(level: Level): void {
  root.level = level;
  for (const [module, child] of children) {
    if (!(traced.has(module) || traced.has('*'))) child.level = level;
  }
}

export const LOG_LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
