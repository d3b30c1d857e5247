import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsafePath, cleanEntryPath, isWithin, whiteoutOf } from './paths.js';

void test('cleanEntryPath normalizes names and refuses escapes', () => {
  const ok: [string, string][] = [
    ['a', 'a'],
    ['./a/b/', 'a/b'],
    ['a//b/./c', 'a/b/c'],
    ['./a/../b', 'b'],
    ['a/b/../../c', 'c'],
    ['./', ''],
    ['.', ''],
    ['a/..', ''],
    ['..a/b..', '..a/b..'], // dots inside a name are just a name
  ];
  for (const [name, want] of ok) assert.equal(cleanEntryPath(name), want, name);
  const bad = ['..', '../x', 'a/../../x', '/etc/passwd', '/', 'a/\0/b', './../x'];
  for (const name of bad) assert.throws(() => cleanEntryPath(name), UnsafePath, JSON.stringify(name));
});

void test('whiteoutOf tells file whiteouts, opaque markers and reserved names apart', () => {
  assert.equal(whiteoutOf('a/b'), undefined);
  assert.equal(whiteoutOf('a/x.wh.b'), undefined);
  assert.deepEqual(whiteoutOf('a/.wh.b'), { kind: 'file', target: 'a/b' });
  assert.deepEqual(whiteoutOf('.wh.b'), { kind: 'file', target: 'b' });
  assert.deepEqual(whiteoutOf('.wh..hidden'), { kind: 'file', target: '.hidden' });
  assert.deepEqual(whiteoutOf('a/.wh..wh..opq'), { kind: 'opaque', dir: 'a' });
  assert.deepEqual(whiteoutOf('.wh..wh..opq'), { kind: 'opaque', dir: '' });
  assert.deepEqual(whiteoutOf('.wh..wh.plnk'), { kind: 'meta' });
  for (const name of ['a/.wh.', 'a/.wh..', 'a/.wh...']) assert.throws(() => whiteoutOf(name), UnsafePath, name);
});

void test('isWithin matches a path and what is below it, not a sibling sharing its prefix', () => {
  assert.ok(isWithin('a/b', 'a'));
  assert.ok(isWithin('a', 'a'));
  assert.ok(!isWithin('ab', 'a'));
  assert.ok(isWithin('anything', ''));
});
