// Proto3 JSON mapping (protojson) for the CLI: what crictl prints for `-o json` and reads from
// config files. Messages from the client use the proto's snake_case names; JSON uses lowerCamelCase
// names, 64-bit integers as strings, enums by name and omits unset messages — Go's protojson with
// EmitDefaultValues, which is what crictl calls. The schema comes from cri/proto/api.proto.
import protobuf from 'protobufjs';
import { SkiffError } from '../../common/errors.js';
import { API_PROTO_PATH } from '../proto/load.js';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const PACKAGE = 'runtime.v1';
const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

let root: protobuf.Root | undefined;

function messageType(name: string): protobuf.Type {
  if (!root) {
    root = new protobuf.Root().loadSync(API_PROTO_PATH, { keepCase: true });
    root.resolveAll();
  }
  return root.lookupType(`${PACKAGE}.${name}`);
}

/** protoc's json_name rule: drop each underscore and upper-case the letter after it. */
export function jsonName(field: string): string {
  return field.replace(/_+([a-zA-Z0-9]?)/g, (_, c: string) => c.toUpperCase());
}

/** A decoded message (proto field names) in protojson form, fields in declaration order. */
export function toProtoJson(typeName: string, message: object): JsonObject {
  return messageToJson(messageType(typeName), message as Record<string, unknown>);
}

function messageToJson(type: protobuf.Type, message: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const value = message[field.name];
    // proto-loader decodes an unset message field as null; protojson leaves it out.
    if (value === undefined || value === null) continue;
    const key = jsonName(field.name);
    if (field.map) {
      const entries: JsonObject = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) entries[k] = valueToJson(field, v);
      out[key] = entries;
    } else if (field.repeated) {
      out[key] = (value as unknown[]).map((v) => valueToJson(field, v));
    } else {
      out[key] = valueToJson(field, value);
    }
  }
  return out;
}

function valueToJson(field: protobuf.Field, value: unknown): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, value as Record<string, unknown>);
  if (resolved instanceof protobuf.Enum) {
    return typeof value === 'number' ? (resolved.valuesById[value] ?? value) : String(value);
  }
  if (INT64_TYPES.has(field.type)) return String(value);
  if (field.type === 'bytes') {
    return typeof value === 'string' ? value : Buffer.from(value as Uint8Array).toString('base64');
  }
  if ((field.type === 'double' || field.type === 'float') && typeof value === 'number' && !Number.isFinite(value)) {
    return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  }
  return value as Json;
}

/**
 * A protojson document (camelCase or proto field names, as protojson accepts both) as a request
 * object for the client. Unknown fields and wrong value kinds are errors that name the path.
 */
export function fromProtoJson(typeName: string, json: unknown, what = typeName): Record<string, unknown> {
  return messageFromJson(messageType(typeName), json, what);
}

function messageFromJson(type: protobuf.Type, json: unknown, path: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid(path, `expected an object for ${type.name}`);
  }
  const byName = new Map<string, protobuf.Field>();
  for (const field of type.fieldsArray) {
    byName.set(field.name, field);
    byName.set(jsonName(field.name), field);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = byName.get(key);
    if (!field) throw invalid(path, `unknown field "${key}" in ${type.name}`);
    if (value === null) continue;
    const at = `${path}.${key}`;
    if (field.map) {
      if (typeof value !== 'object' || Array.isArray(value)) throw invalid(at, 'expected an object');
      const entries: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) entries[k] = valueFromJson(field, v, `${at}.${k}`);
      out[field.name] = entries;
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw invalid(at, 'expected an array');
      out[field.name] = value.map((v, i) => valueFromJson(field, v, `${at}[${i}]`));
    } else {
      out[field.name] = valueFromJson(field, value, at);
    }
  }
  return out;
}

function valueFromJson(field: protobuf.Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageFromJson(resolved, value, path);
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string' && value in resolved.values) return value;
    if (typeof value === 'number' && resolved.valuesById[value] !== undefined) return resolved.valuesById[value];
    throw invalid(path, `${JSON.stringify(value)} is not a ${resolved.name}`);
  }
  if (INT64_TYPES.has(field.type) || INT32_TYPES.has(field.type)) {
    const text = typeof value === 'number' || typeof value === 'string' ? String(value) : '';
    if (!/^-?\d+$/.test(text)) throw invalid(path, `expected an integer, got ${JSON.stringify(value)}`);
    return INT64_TYPES.has(field.type) ? text : Number(text);
  }
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') throw invalid(path, 'expected a string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(path, 'expected true or false');
      return value;
    case 'bytes':
      if (typeof value !== 'string') throw invalid(path, 'expected base64 text');
      return Buffer.from(value, 'base64');
    default: {
      const n = typeof value === 'string' ? Number(value) : value;
      if (typeof n !== 'number' || (Number.isNaN(n) && value !== 'NaN')) throw invalid(path, 'expected a number');
      return n;
    }
  }
}

function invalid(path: string, message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', `${path}: ${message}`);
}
