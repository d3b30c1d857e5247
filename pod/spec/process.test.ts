import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContainerSpec } from './index.js';
import { env, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { DEFAULT_PATH } from './process.js';

const build = (o: FixtureOptions) => buildContainerSpec(specInput(o));

const argsRows: { name: string; o: FixtureOptions; want: string[] }[] = [
  { name: 'image Entrypoint and Cmd when the request has neither', o: { image: { Entrypoint: ['/entry'], Cmd: ['--flag'] } }, want: ['/entry', '--flag'] },
  { name: 'CRI command replaces Entrypoint and drops Cmd', o: { image: { Entrypoint: ['/entry'], Cmd: ['--flag'] }, config: { command: ['/bin/sh'] } }, want: ['/bin/sh'] },
  { name: 'CRI args replace Cmd and keep Entrypoint', o: { image: { Entrypoint: ['/entry'], Cmd: ['--flag'] }, config: { args: ['-v'] } }, want: ['/entry', '-v'] },
  { name: 'CRI command and args together', o: { image: { Entrypoint: ['/entry'], Cmd: ['--flag'] }, config: { command: ['/bin/sh'], args: ['-c', 'true'] } }, want: ['/bin/sh', '-c', 'true'] },
  { name: 'image Cmd alone', o: { image: { Cmd: ['nginx', '-g', 'daemon off;'] } }, want: ['nginx', '-g', 'daemon off;'] },
  { name: 'image Entrypoint alone', o: { image: { Entrypoint: ['/pause'] } }, want: ['/pause'] },
  { name: 'an Entrypoint of [""] counts as none', o: { image: { Entrypoint: [''], Cmd: ['sh'] } }, want: ['sh'] },
  { name: 'CRI args with a null Entrypoint and Cmd', o: { image: { Entrypoint: null, Cmd: null }, config: { args: ['/app'] } }, want: ['/app'] },
];

for (const r of argsRows) {
  test(`args: ${r.name}`, () => assert.deepEqual(build(r.o).process.args, r.want));
}

test('args: no command anywhere is INVALID_ARGUMENT "no command specified"', () => {
  throwsSkiff(() => build({ image: {} }), 'SKIFF_INVALID_ARGUMENT', /container "app": no command specified/);
});

const envRows: { name: string; o: FixtureOptions; want: string[] }[] = [
  { name: 'PATH default and HOSTNAME', o: {}, want: [DEFAULT_PATH, 'HOSTNAME=web'] },
  { name: 'the image PATH replaces the default in place', o: { image: { Cmd: ['sh'], Env: ['PATH=/opt/bin', 'A=1'] } }, want: ['PATH=/opt/bin', 'HOSTNAME=web', 'A=1'] },
  {
    name: 'CRI envs override image envs by key, in place, and new keys follow in order',
    o: { image: { Cmd: ['sh'], Env: ['A=1', 'B=2'] }, config: { envs: [env('B', 'cri'), env('C', '3'), env('A', 'x=y')] } },
    want: [DEFAULT_PATH, 'HOSTNAME=web', 'A=x=y', 'B=cri', 'C=3'],
  },
  { name: 'an image entry without "=" unsets the variable', o: { image: { Cmd: ['sh'], Env: ['HOSTNAME'] } }, want: [DEFAULT_PATH] },
  { name: 'the image may set HOSTNAME itself', o: { image: { Cmd: ['sh'], Env: ['HOSTNAME=img'] } }, want: [DEFAULT_PATH, 'HOSTNAME=img'] },
  { name: 'no HOSTNAME without a hostname', o: { sandbox: { hostname: '' } }, want: [DEFAULT_PATH] },
  { name: 'a CRI env with an empty value is kept', o: { config: { envs: [env('EMPTY', '')] } }, want: [DEFAULT_PATH, 'HOSTNAME=web', 'EMPTY='] },
];

for (const r of envRows) {
  test(`env: ${r.name}`, () => assert.deepEqual(build(r.o).process.env, r.want));
}

const cwdRows: { name: string; o: FixtureOptions; want: string }[] = [
  { name: 'CRI working_dir wins', o: { image: { Cmd: ['sh'], WorkingDir: '/img' }, config: { working_dir: '/work' } }, want: '/work' },
  { name: 'image WorkingDir next', o: { image: { Cmd: ['sh'], WorkingDir: '/img' } }, want: '/img' },
  { name: '"/" when neither says', o: {}, want: '/' },
  { name: 'a relative image WorkingDir is taken from "/"', o: { image: { Cmd: ['sh'], WorkingDir: 'srv/app' } }, want: '/srv/app' },
];

for (const r of cwdRows) {
  test(`cwd: ${r.name}`, () => assert.equal(build(r.o).process.cwd, r.want));
}

test('cwd: a relative CRI working_dir is INVALID_ARGUMENT', () => {
  throwsSkiff(() => build({ config: { working_dir: 'work' } }), 'SKIFF_INVALID_ARGUMENT', /working_dir "work" is not an absolute path/);
});

test('terminal follows tty, and stays off by default', () => {
  assert.equal(build({ config: { tty: true } }).process.terminal, true);
  assert.equal(build({}).process.terminal, false);
});
