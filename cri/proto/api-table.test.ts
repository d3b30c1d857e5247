// Checks cri/proto/api.proto against the CRI v1 fact table (shared/cri-api/runtime-v1.tsv) in both
// directions: every row of the table must be in the proto exactly, and the proto must declare
// nothing the table lacks. Wire compatibility with kubelet rests on these names and numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { API_PROTO_PATH } from './load.js';

// The repository is cloned with shared/ as its sibling; from dist/cri/proto/ that is four levels up.
const TABLE_PATH = fileURLToPath(new URL('../../../../shared/cri-api/runtime-v1.tsv', import.meta.url));
const PACKAGE = 'runtime.v1';

const SCALARS = new Set([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes',
]);

/**
 * One declaration in a normal form shared by both sides: `key` says what is declared (kind, scope,
 * name) and `value` everything that must match; `where` tells a reader where to look.
 */
interface Decl {
  key: string;
  value: string;
  where: string;
}

/** Table rows as declarations, with type names resolved to package-relative full names. */
function tableDecls(text: string): Decl[] {
  const rows = text
    .split('\n')
    .map((line, i) => ({ cols: line.replace(/\r$/, '').split('\t'), line: i + 1, text: line }))
    .filter((r) => r.text.trim() !== '' && !r.text.startsWith('#'));
  // Scopes first, so that a field type can be resolved against every declared message and enum.
  const scopes = new Set(
    rows.filter((r) => (r.cols[0] === 'message' || r.cols[0] === 'enum') && !r.cols[2]).map((r) => r.cols[1]),
  );
  const resolve = (scope: string, type: string, where: string): string => {
    if (SCALARS.has(type)) return type;
    // protobuf scoping: innermost enclosing scope first, then outwards to the package.
    const parts = scope.split('.');
    for (let n = parts.length; n >= 0; n--) {
      const candidate = [...parts.slice(0, n), type].join('.');
      if (scopes.has(candidate)) return candidate;
    }
    throw new Error(`${where}: type ${type} is declared nowhere in the table`);
  };
  const decls: Decl[] = [];
  for (const { cols, line, text: rowText } of rows) {
    const where = `table line ${line} "${rowText.replace(/\t+$/, '').replaceAll('\t', ' ')}"`;
    const [kind, scope, name, a, b, label] = cols;
    if (!name) {
      decls.push({ key: `${kind} ${scope}`, value: '', where });
    } else if (kind === 'rpc') {
      const stream = b.startsWith('stream ');
      decls.push({
        key: `rpc ${scope}.${name}`,
        value: `(${resolve('', a, where)}) returns (${stream ? 'stream ' : ''}${resolve('', b.replace(/^stream /, ''), where)})`,
        where,
      });
    } else if (kind === 'enum') {
      decls.push({ key: `enum value ${scope}.${name}`, value: `= ${a}`, where });
    } else if (kind === 'field') {
      const map = /^map<\s*(\w+)\s*,\s*([\w.]+)\s*>$/.exec(b);
      const type = map ? `map<${map[1]},${resolve(scope, map[2], where)}>` : resolve(scope, b, where);
      decls.push({ key: `field ${scope}.${name}`, value: `${type} = ${a} [${label ?? ''}]`, where });
    } else {
      throw new Error(`${where}: unknown kind ${kind}`);
    }
  }
  return decls;
}

/** The same declarations read from a parsed proto. */
function protoDecls(root: protobuf.Root): Decl[] {
  root.resolveAll();
  const decls: Decl[] = [];
  const pkg = root.lookup(PACKAGE);
  const prefix = `.${PACKAGE}.`;
  const rel = (obj: protobuf.ReflectionObject): string =>
    obj.fullName.startsWith(prefix) ? obj.fullName.slice(prefix.length) : obj.fullName;
  const where = (obj: protobuf.ReflectionObject): string => `api.proto ${obj.fullName}`;
  const typeName = (field: protobuf.Field): string =>
    field.resolvedType ? rel(field.resolvedType) : field.type;

  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        decls.push({ key: `service ${rel(obj)}`, value: '', where: where(obj) });
        for (const m of obj.methodsArray) {
          m.resolve();
          const req = m.resolvedRequestType ? rel(m.resolvedRequestType) : m.requestType;
          const res = m.resolvedResponseType ? rel(m.resolvedResponseType) : m.responseType;
          decls.push({
            key: `rpc ${rel(obj)}.${m.name}`,
            value: `(${m.requestStream ? 'stream ' : ''}${req}) returns (${m.responseStream ? 'stream ' : ''}${res})`,
            where: where(m),
          });
        }
      } else if (obj instanceof protobuf.Type) {
        decls.push({ key: `message ${rel(obj)}`, value: '', where: where(obj) });
        for (const f of obj.fieldsArray) {
          let label = '';
          if (f instanceof protobuf.MapField) label = '';
          else if (f.repeated) label = 'repeated';
          else if (f.options?.proto3_optional) label = 'optional';
          else if (f.partOf) label = `oneof ${f.partOf.name}`;
          const type = f instanceof protobuf.MapField ? `map<${f.keyType},${typeName(f)}>` : typeName(f);
          decls.push({ key: `field ${rel(obj)}.${f.name}`, value: `${type} = ${f.id} [${label}]`, where: where(f) });
        }
        visit(obj);
      } else if (obj instanceof protobuf.Enum) {
        decls.push({ key: `enum ${rel(obj)}`, value: '', where: where(obj) });
        for (const [name, num] of Object.entries(obj.values)) {
          decls.push({ key: `enum value ${rel(obj)}.${name}`, value: `= ${num}`, where: where(obj) });
        }
      } else if (obj instanceof protobuf.Namespace && ns === pkg) {
        // A namespace inside the package would be a nested package: not in the CRI.
        decls.push({ key: `package ${rel(obj)}`, value: '', where: where(obj) });
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj);
      }
    }
  };
  // Walk the whole root so that anything declared outside runtime.v1 shows up as extra too.
  visit(root);
  // The package namespaces themselves are not declarations of the table.
  return decls.filter((d) => !(d.key === `package ${PACKAGE}`));
}

/** Every difference between the two sides, each naming the table row or proto element. */
function compare(table: Decl[], proto: Decl[]): string[] {
  const problems: string[] = [];
  const index = (decls: Decl[], side: string): Map<string, Decl> => {
    const map = new Map<string, Decl>();
    for (const d of decls) {
      if (map.has(d.key)) problems.push(`${d.where}: ${d.key} declared twice in the ${side}`);
      map.set(d.key, d);
    }
    return map;
  };
  const inTable = index(table, 'table');
  const inProto = index(proto, 'proto');
  for (const [key, t] of inTable) {
    const p = inProto.get(key);
    if (!p) problems.push(`${t.where}: ${key} is missing from api.proto`);
    else if (p.value !== t.value) problems.push(`${t.where}: ${key} is "${p.value}" in api.proto, the table says "${t.value}"`);
  }
  for (const [key, p] of inProto) {
    if (!inTable.has(key)) problems.push(`${p.where}: ${key} ${p.value} is not in the table`.trimEnd());
  }
  return problems;
}

function parseProto(): protobuf.Root {
  const source = readFileSync(API_PROTO_PATH, 'utf8');
  // proto2 would change field presence and packing on the wire.
  assert.match(source, /^syntax = "proto3";$/m, 'api.proto must be proto3');
  const parsed = protobuf.parse(source, { keepCase: true });
  assert.equal(parsed.package, PACKAGE, 'api.proto must declare package runtime.v1');
  return parsed.root;
}

const table = tableDecls(readFileSync(TABLE_PATH, 'utf8'));

void test('the table is read completely (services, rpcs, messages, enums, fields)', () => {
  const count = (prefix: string) => table.filter((d) => d.key.startsWith(prefix)).length;
  assert.equal(count('service '), 2);
  assert.ok(count('rpc ') >= 40, 'expected every CRI rpc');
  assert.ok(count('field ') >= 400, 'expected every CRI field');
  assert.ok(count('enum value ') >= 80, 'expected every CRI enum value');
});

void test('every table row exists identically in api.proto', () => {
  const proto = protoDecls(parseProto());
  const missing = compare(table, proto).filter((p) => p.startsWith('table line'));
  assert.deepEqual(missing, []);
});

void test('api.proto declares nothing that the table lacks', () => {
  const proto = protoDecls(parseProto());
  const extra = compare(table, proto).filter((p) => !p.startsWith('table line'));
  assert.deepEqual(extra, []);
});

void test('the comparison reports a changed field number and names the row', () => {
  const root = parseProto();
  root.lookupType(`${PACKAGE}.VersionResponse`).fields.runtime_name.id = 99;
  const problems = compare(table, protoDecls(root));
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0], /^table line \d+ "field VersionResponse runtime_name 2 string": .*= 99/);
});

void test('the comparison reports a changed label, an extra field and a missing enum value', () => {
  const root = parseProto();
  const dns = root.lookupType(`${PACKAGE}.DNSConfig`);
  dns.fields.servers.repeated = false;
  dns.add(new protobuf.Field('extra_field', 42, 'string'));
  const protocol = root.lookupEnum(`${PACKAGE}.Protocol`);
  protocol.remove('SCTP');
  const problems = compare(table, protoDecls(root));
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.ok(problems.some((p) => /"field DNSConfig servers 1 string repeated".*\[\]/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /api\.proto \.runtime\.v1\.DNSConfig\.extra_field: .*not in the table/.test(p)));
  assert.ok(problems.some((p) => /"enum Protocol SCTP 2": enum value Protocol\.SCTP is missing/.test(p)));
});

void test('the comparison reports a server-streaming change of an rpc', () => {
  const root = parseProto();
  root.lookupService(`${PACKAGE}.ImageService`).methods.StreamImages.responseStream = false;
  const problems = compare(table, protoDecls(root));
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0], /StreamImages/);
});
