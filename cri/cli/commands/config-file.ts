// Pod and container config files for `runp` and `create`: JSON or YAML, as crictl reads them, with
// CRI field names in snake_case or protojson's camelCase. A file that does not parse or holds an
// unknown field or a wrong kind of value is a usage error naming the file and the field.
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { usageError } from '../args.js';
import { fromProtoJson } from '../protojson.js';
import { errnoCode, errorMessage, isSkiffError } from '../../../common/errors.js';
import type * as v1 from '../../gen/v1.js';

/** A PodSandboxConfig; like crictl, a missing uid is generated and name and namespace are required. */
export async function loadPodSandboxConfig(path: string): Promise<v1.PodSandboxConfig> {
  const what = 'load podSandboxConfig';
  const config = (await loadMessage(what, 'PodSandboxConfig', path)) as v1.PodSandboxConfig;
  const metadata = config.metadata;
  if (!metadata) throw usageError(`${what}: ${path}: metadata is not set`);
  if (!metadata.uid) metadata.uid = randomUUID();
  if (!metadata.name || !metadata.namespace) throw usageError(`${what}: ${path}: name or namespace is not in metadata`);
  return config;
}

/** A ContainerConfig; like crictl, metadata.name is required. */
export async function loadContainerConfig(path: string): Promise<v1.ContainerConfig> {
  const what = 'load containerConfig';
  const config = (await loadMessage(what, 'ContainerConfig', path, envValuesAsText)) as v1.ContainerConfig;
  if (!config.metadata) throw usageError(`${what}: ${path}: metadata is not set`);
  if (!config.metadata.name) throw usageError(`${what}: ${path}: name is not in metadata`);
  return config;
}

/**
 * Our wire table types KeyValue.value as bytes, where upstream cri-api has string (the wire bytes
 * are the same). Config files, crictl's included, write env values as text, not base64: take them
 * as UTF-8 before the protojson reading would decode them as base64.
 */
function envValuesAsText(doc: Record<string, unknown>): void {
  if (!Array.isArray(doc.envs)) return;
  for (const kv of doc.envs as unknown[]) {
    if (kv && typeof kv === 'object' && typeof (kv as { value?: unknown }).value === 'string') {
      (kv as { value: string }).value = Buffer.from((kv as { value: string }).value, 'utf8').toString('base64');
    }
  }
}

async function loadMessage(
  what: string,
  typeName: string,
  path: string,
  prepare: (doc: Record<string, unknown>) => void = () => undefined,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw usageError(`${what}: config at ${path} not found`);
    throw new Error(`${what}: ${errorMessage(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    // YAML 1.2 reads JSON as well; its core schema keeps `yes`/`no` and dates as strings.
    doc = parseYaml(text, { prettyErrors: false });
  } catch (err) {
    throw usageError(`${what}: ${path} is neither JSON nor YAML: ${errorMessage(err).split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw usageError(`${what}: ${path}: expected a ${typeName} object`);
  }
  prepare(doc as Record<string, unknown>);
  try {
    // An empty root path makes field paths read `.metadata.name` (and a root field `: unknown
    // field`); the leading punctuation goes below.
    return fromProtoJson(typeName, doc, '');
  } catch (err) {
    if (isSkiffError(err, 'SKIFF_INVALID_ARGUMENT')) throw usageError(`${what}: ${path}: ${err.message.replace(/^(: |\.)/, '')}`);
    throw err;
  }
}
