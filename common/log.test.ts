// The daemon's logger options: what the CRI wrapper traces must not carry registry secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LOG_OPTIONS } from './log.js';

void test('PullImage auth secrets traced by the CRI wrapper are redacted', () => {
  const lines: string[] = [];
  const memory = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  // The CRI wrapper's logger is a child of the root; build the same over memory, at trace level.
  const log = pino({ ...LOG_OPTIONS, level: 'trace' }, memory).child({ module: 'cri' });
  const secrets = { password: 'pw-s3cret', auth: 'YXV0aC1zM2NyZXQ=', identity_token: 'id-s3cret', registry_token: 'reg-s3cret' };
  const request = { image: { image: 'registry.example.com/app:v1' }, auth: { username: 'alice', ...secrets } };
  log.trace({ method: 'PullImage', req: request }, 'call');

  assert.equal(lines.length, 1);
  const out = lines[0];
  for (const secret of Object.values(secrets)) assert.ok(!out.includes(secret), `${secret} in ${out}`);
  const entry = JSON.parse(out) as { req: { image: unknown; auth: Record<string, string> } };
  assert.deepEqual(entry.req.image, request.image, 'the rest of the request is logged');
  for (const field of Object.keys(secrets)) assert.equal(entry.req.auth[field], '[redacted]', field);
  assert.equal(request.auth.password, 'pw-s3cret', 'the request itself is left alone');
});
