// Command-line parsing for the skiff CLI, shaped like crictl's: global flags come before the
// command (`skiff -r unix:///x.sock images -q`), each command has its own flags, and durations use
// Go's syntax (`2s`, `1m30s`) because that is what people type for crictl.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SkiffError } from '../../common/errors.js';
import { parseDuration as parseGoDuration } from '../../common/duration.js';
import { DEFAULT_ENDPOINT } from '../client/client.js';

/** A usage problem: the CLI prints it and exits 2, and no rpc has been sent. */
export function usageError(message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

/** Go's time.ParseDuration, in milliseconds; a malformed duration is a usage error. */
export function parseDuration(text: string): number {
  try {
    return parseGoDuration(text);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

/** A flag of a command: parseArgs' description plus what help prints. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder for the value in help, e.g. `FILE`. */
  value?: string;
  description: string;
}
export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'string'
  ? S['multiple'] extends true
    ? string[]
    : string
  : S['multiple'] extends true
    ? boolean[]
    : boolean;
/** Parsed flag values: a flag that was not given is undefined. */
export type OptionValues<O extends OptionSpecs> = { [K in keyof O]?: ValueOf<O[K]> } & { help?: boolean };

export interface ParsedCommandArgs<O extends OptionSpecs> {
  values: OptionValues<O>;
  positionals: string[];
}

const HELP_SPEC: OptionSpec = { type: 'boolean', short: 'h', description: 'Show help' };

/** Parses a command's own arguments (everything after the command name). Every command has -h/--help. */
export function parseCommandArgs<O extends OptionSpecs>(specs: O, args: readonly string[]): ParsedCommandArgs<O> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries({ ...specs, help: HELP_SPEC })) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
    return { values: values as OptionValues<O>, positionals };
  } catch (err) {
    throw parseArgsUsageError(err);
  }
}

/** node:util's messages are long and mention JavaScript; crictl users expect `flag ...` wording. */
function parseArgsUsageError(err: unknown): SkiffError {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted) return usageError(`flag provided but not defined: ${quoted}`);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted) return usageError(`flag needs an argument: ${quoted.replace(/ <value>$/, '')}`);
  return usageError(message.split('. ')[0]);
}

export interface GlobalOptions {
  runtimeEndpoint: string;
  imageEndpoint: string;
  /** Deadline of each rpc in ms (0: none). */
  timeoutMs: number;
  /** Whether -t was given: only then does it bound image pulls, which have no deadline otherwise. */
  timeoutSet: boolean;
  debug: boolean;
  help: boolean;
  version: boolean;
}

export const GLOBAL_OPTIONS = {
  'runtime-endpoint': {
    type: 'string',
    short: 'r',
    value: 'ENDPOINT',
    description: `CRI runtime endpoint (env CONTAINER_RUNTIME_ENDPOINT; default ${DEFAULT_ENDPOINT})`,
  },
  'image-endpoint': {
    type: 'string',
    short: 'i',
    value: 'ENDPOINT',
    description: 'CRI image endpoint (env IMAGE_SERVICE_ENDPOINT; default: the runtime endpoint)',
  },
  timeout: {
    type: 'string',
    short: 't',
    value: 'DURATION',
    description: 'Deadline of each request, e.g. 2s, 1m; 0 for none (default 2s; pulls have none unless given)',
  },
  debug: { type: 'boolean', short: 'D', description: 'Log requests and responses (to stderr)' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
  version: { type: 'boolean', short: 'v', description: 'Print the version of skiff' },
} as const satisfies OptionSpecs;

export const DEFAULT_TIMEOUT = '2s';

export interface SplitArgs {
  global: GlobalOptions;
  /** The command name, if any. */
  command?: string;
  /** Everything after the command name. */
  rest: string[];
}

/** Splits argv into global flags, the command and its arguments, and resolves endpoints from env. */
export function parseGlobalArgs(argv: readonly string[], env: Record<string, string | undefined>): SplitArgs {
  // The global flags end at the first positional: find it, skipping the values of flags that take one.
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) {
    if (spec.type === 'string') {
      takesValue.add(`--${name}`);
      if ('short' in spec) takesValue.add(`-${spec.short}`);
    }
  }
  let end = 0;
  while (end < argv.length) {
    const arg = argv[end];
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') break;
    end += takesValue.has(arg) ? 2 : 1;
  }
  end = Math.min(end, argv.length);
  const afterDashes = argv[end] === '--' ? 1 : 0;
  const command = argv[end + afterDashes];
  const rest = argv.slice(end + afterDashes + 1);

  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) options[name] = { type: spec.type, short: spec.short };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv.slice(0, end), options, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw parseArgsUsageError(err);
  }
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  const runtimeEndpoint = str('runtime-endpoint') || env.CONTAINER_RUNTIME_ENDPOINT || DEFAULT_ENDPOINT;
  const imageEndpoint = str('image-endpoint') || env.IMAGE_SERVICE_ENDPOINT || runtimeEndpoint;
  const timeoutText = str('timeout');
  const timeoutMs = parseDuration(timeoutText ?? DEFAULT_TIMEOUT);
  if (timeoutMs < 0) throw usageError(`invalid timeout "${timeoutText}": must not be negative`);
  return {
    global: {
      runtimeEndpoint,
      imageEndpoint,
      timeoutMs,
      timeoutSet: timeoutText !== undefined,
      debug: values.debug === true,
      help: values.help === true,
      version: values.version === true,
    },
    command,
    rest,
  };
}
