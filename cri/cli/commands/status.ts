// What `inspect`, `inspectp` and the -v listings of `ps` and `pods` have in common: crictl's
// {"status": ..., <info keys>} documents, and the `Labels:`/`Annotations:` blocks of its text forms.
import { jsonText, sortKeys, yamlText } from '../output.js';
import type { Json, JsonObject } from '../protojson.js';
import { infoEntries } from './info.js';

/**
 * One status document: the status in protojson under "status" and every key of the verbose info
 * map beside it, keys sorted at every level (crictl round-trips it through a Go map).
 */
export function statusDocument(status: JsonObject, info: Record<string, string>): Json {
  return sortKeys({ status, ...infoEntries(info) });
}

/** One document as it is, several as an array — crictl's "old behaviour" for a single id. */
export function documentsText(docs: readonly Json[], format: 'json' | 'yaml'): string {
  const doc = docs.length === 1 ? docs[0] : [...docs];
  return format === 'yaml' ? yamlText(doc) : jsonText(doc);
}

/** `Labels:` then a tab-indented `key -> value` per entry, sorted; nothing for an empty map. */
export function mapLines(title: string, map: Record<string, string> | null | undefined): string {
  const keys = Object.keys(map ?? {}).sort();
  if (!map || keys.length === 0) return '';
  return `${title}:\n${keys.map((k) => `\t${k} -> ${map[k]}\n`).join('')}`;
}

/** Go's `%v` of a map[string]string: `map[a:1 b:2]`, keys sorted. */
export function goMap(map: Record<string, string>): string {
  const entries = Object.keys(map)
    .sort()
    .map((k) => `${k}:${map[k]}`);
  return `map[${entries.join(' ')}]`;
}
