// Parsing of durations, global flags and command flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommandArgs, parseDuration, parseGlobalArgs, type OptionSpecs } from './args.js';
import { isSkiffError, errorMessage } from '../../common/errors.js';

const isUsage = (err: unknown): boolean => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT');

void test('parseDuration reads Go durations in milliseconds', () => {
  const cases: [string, number][] = [
    ['2s', 2000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['2h45m', 9_900_000],
    ['300ms', 300],
    ['1.5s', 1500],
    ['.5s', 500],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['2000000ns', 2],
    ['0', 0],
    ['-1s', -1000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

void test('parseDuration rejects numbers without a unit and unknown units', () => {
  for (const text of ['', '2', '1x', 's', '1s2', '1d', '--1s']) {
    assert.throws(() => parseDuration(text), isUsage, text);
  }
});

void test('global flags end at the command, which keeps its own flags', () => {
  const split = parseGlobalArgs(['-r', 'unix:///a.sock', '--timeout=5s', '-D', 'images', '-q', '-r', 'x'], {});
  assert.equal(split.command, 'images');
  assert.deepEqual(split.rest, ['-q', '-r', 'x']);
  assert.equal(split.global.runtimeEndpoint, 'unix:///a.sock');
  assert.equal(split.global.imageEndpoint, 'unix:///a.sock', 'the image endpoint defaults to the runtime endpoint');
  assert.equal(split.global.timeoutMs, 5000);
  assert.equal(split.global.timeoutSet, true);
  assert.equal(split.global.debug, true);
});

void test('endpoints come from flags, then the environment, then the default', () => {
  const env = { CONTAINER_RUNTIME_ENDPOINT: 'unix:///env-rt.sock', IMAGE_SERVICE_ENDPOINT: 'unix:///env-img.sock' };
  const fromEnv = parseGlobalArgs(['version'], env).global;
  assert.equal(fromEnv.runtimeEndpoint, 'unix:///env-rt.sock');
  assert.equal(fromEnv.imageEndpoint, 'unix:///env-img.sock');
  const fromFlags = parseGlobalArgs(['-i', '/img.sock', '--runtime-endpoint', '/rt.sock', 'version'], env).global;
  assert.equal(fromFlags.runtimeEndpoint, '/rt.sock');
  assert.equal(fromFlags.imageEndpoint, '/img.sock');
  const defaults = parseGlobalArgs(['version'], {}).global;
  assert.equal(defaults.runtimeEndpoint, 'unix:///run/skiff/skiff.sock');
  assert.equal(defaults.timeoutMs, 2000);
  assert.equal(defaults.timeoutSet, false);
});

void test('short global flags take attached values and group', () => {
  const split = parseGlobalArgs(['-t2s', '-Dh'], {});
  assert.equal(split.global.timeoutMs, 2000);
  assert.equal(split.global.debug, true);
  assert.equal(split.global.help, true);
  assert.equal(split.command, undefined);
});

void test('unknown global flags and bad timeouts are usage errors', () => {
  assert.throws(() => parseGlobalArgs(['--bogus', 'version'], {}), (err) => isUsage(err) && /--bogus/.test(errorMessage(err)));
  assert.throws(() => parseGlobalArgs(['-t', 'soon', 'version'], {}), isUsage);
  assert.throws(() => parseGlobalArgs(['-t', '-1s', 'version'], {}), isUsage);
  assert.throws(() => parseGlobalArgs(['-r'], {}), isUsage);
});

const specs = {
  quiet: { type: 'boolean', short: 'q', description: '' },
  all: { type: 'boolean', short: 'a', description: '' },
  output: { type: 'string', short: 'o', description: '' },
  annotation: { type: 'string', multiple: true, description: '' },
} as const satisfies OptionSpecs;

void test('command flags: grouping, repeats, positionals and help', () => {
  const { values, positionals } = parseCommandArgs(specs, ['-qa', '-o', 'json', '--annotation', 'a=1', 'img', '--annotation=b=2', '-h']);
  assert.equal(values.quiet, true);
  assert.equal(values.all, true);
  assert.equal(values.output, 'json');
  assert.deepEqual(values.annotation, ['a=1', 'b=2']);
  assert.equal(values.help, true);
  assert.deepEqual(positionals, ['img']);
});

void test('command flag errors read like crictl', () => {
  assert.throws(() => parseCommandArgs(specs, ['--nope']), (err) => isUsage(err) && errorMessage(err) === 'flag provided but not defined: --nope');
  assert.throws(() => parseCommandArgs(specs, ['-o']), (err) => isUsage(err) && /^flag needs an argument: /.test(errorMessage(err)));
});
