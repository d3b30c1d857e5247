// How the skiff CLI prints: crictl-style tables and sizes, JSON and YAML documents, and error lines.
//
// `-o json` is protojson (see protojson.ts): lowerCamelCase field names, 64-bit integers as
// strings, enums by name, every scalar present. Commands that print a "status document" (info,
// inspecti, imagefsinfo) sort object keys like crictl, whose output passes through a Go map.
import type { ServiceError } from '@grpc/grpc-js';
import { isSkiffError, errorMessage } from '../../common/errors.js';
import { usageError } from './args.js';
import type { Json } from './protojson.js';

// ---- tables ----

/**
 * Aligns rows like Go's tabwriter as crictl configures it (minwidth 20, padding 3): every cell but
 * the last of a row is padded to its column's width.
 */
export function renderTable(rows: readonly (readonly string[])[], minWidth = 20, padding = 3): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.slice(0, -1).forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? minWidth, textWidth(cell) + padding);
    });
  }
  return rows
    .map((row) => row.map((cell, i) => (i < row.length - 1 ? cell + ' '.repeat(widths[i] - textWidth(cell)) : cell)).join(''))
    .map((line) => `${line}\n`)
    .join('');
}

function textWidth(text: string): number {
  return [...text].length;
}

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** docker/go-units HumanSizeWithPrecision: decimal units, `precision` significant digits (`4.26MB`). */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < SIZE_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${goFormatG(size, precision)}${SIZE_UNITS[unit]}`;
}

/** Go's `%.<p>g`: like toPrecision, but without trailing zeros and with a two-digit exponent. */
export function goFormatG(value: number, precision: number): string {
  if (value === 0) return '0';
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(precision)))));
  if (exponent < -4 || exponent >= precision) {
    const [mantissa, exp] = value.toExponential(precision - 1).split('e');
    const digits = Math.abs(Number(exp)).toString().padStart(2, '0');
    return `${trimZeros(mantissa)}e${Number(exp) < 0 ? '-' : '+'}${digits}`;
  }
  return trimZeros(value.toFixed(Math.max(0, precision - 1 - exponent)));
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** crictl shortens ids to 13 characters after dropping a `sha256:` prefix. */
export function truncateId(id: string, prefix = 'sha256:'): string {
  const bare = id.startsWith(prefix) ? id.slice(prefix.length) : id;
  return bare.length > 13 ? bare.slice(0, 13) : bare;
}

// ---- documents ----

export type OutputFormat = 'json' | 'yaml' | 'table';

/** Validates `-o`; `fallback` when it was not given. */
export function outputFormat(value: string | undefined, allowed: readonly OutputFormat[], fallback: OutputFormat): OutputFormat {
  if (value === undefined || value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as OutputFormat;
  return badFormat(value, allowed);
}

function badFormat(value: string, allowed: readonly string[]): never {
  throw usageError(`unsupported output format "${value}" (one of: ${allowed.join(', ')})`);
}

/** JSON with two-space indentation and a final newline. */
export function jsonText(value: Json): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Copies a JSON value with the keys of every object in sorted order (Go's map marshalling). */
export function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

/** Block-style YAML of a JSON value, keys sorted as sigs.k8s.io/yaml (used by crictl) prints them. */
export function yamlText(value: Json): string {
  const lines: string[] = [];
  writeYaml(value, 0, lines);
  return `${lines.join('\n')}\n`;
}

function writeYaml(value: Json, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) lines.push(`${pad}[]`);
    for (const item of value) {
      if (isBlock(item)) {
        const nested: string[] = [];
        writeYaml(item, indent + 2, nested);
        // The first line of a nested mapping shares the line with the dash.
        nested[0] = `${pad}- ${nested[0].slice(indent + 2)}`;
        lines.push(...nested);
      } else {
        lines.push(`${pad}- ${yamlScalar(item)}`);
      }
    }
    return;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) lines.push(`${pad}{}`);
    for (const key of keys) {
      const item = value[key];
      if (isBlock(item)) {
        lines.push(`${pad}${yamlScalar(key)}:`);
        // Lists sit at their key's indentation, as go-yaml writes them.
        writeYaml(item, Array.isArray(item) ? indent : indent + 2, lines);
      } else {
        lines.push(`${pad}${yamlScalar(key)}: ${yamlScalar(item)}`);
      }
    }
    return;
  }
  lines.push(`${pad}${yamlScalar(value)}`);
}

function isBlock(value: Json): value is Json[] | { [key: string]: Json } {
  return value !== null && typeof value === 'object' && Object.keys(value).length > 0;
}

function yamlScalar(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return '[]';
  if (typeof value === 'object') return '{}';
  if (typeof value !== 'string') return String(value);
  // Plain only when YAML cannot read it as anything but this string; otherwise double-quoted,
  // whose escapes are JSON's.
  const plain =
    /^[A-Za-z0-9_./][A-Za-z0-9_./:@+=, -]*$/.test(value) &&
    !/:( |$)| #|[ ]$/.test(value) &&
    !/^(true|false|yes|no|on|off|y|n|null|~)$/i.test(value) &&
    !/^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$/.test(value) &&
    !/^0[xo]/i.test(value);
  return plain ? value : JSON.stringify(value);
}

// ---- errors ----

/** gRPC status names as Go's codes package spells them, so messages read like crictl's. */
const GO_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}

/** grpc-go's rendering of a status: `rpc error: code = NotFound desc = image "x" not found`. */
export function formatStatus(err: ServiceError): string {
  const name = GO_CODE_NAMES[err.code] ?? `Code(${err.code})`;
  return `rpc error: code = ${name} desc = ${err.details}`;
}

/** An rpc that failed, tagged with its name for the message. */
export class RpcFailure extends Error {
  override name = 'RpcFailure';
  constructor(
    readonly rpc: string,
    readonly status: ServiceError,
  ) {
    super(`${rpc} failed: ${formatStatus(status)}`, { cause: status });
  }
}

/** Usage errors exit 2 (nothing was sent); everything else, including failed rpcs, exits 1. */
export function failure(err: unknown): { message: string; exitCode: 1 | 2 } {
  return { message: `skiff: ${errorMessage(err)}`, exitCode: isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') ? 2 : 1 };
}
