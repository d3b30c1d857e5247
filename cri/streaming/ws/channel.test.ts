// The channel codec for every subprotocol, negotiation, and the pure status/resize/port helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE64_CHANNEL,
  CHANNEL,
  NO_SUBPROTOCOL,
  PORTFORWARD_PROTOCOLS,
  REMOTECOMMAND_PROTOCOLS,
  V4_BASE64_CHANNEL,
  V4_CHANNEL,
  V5_CHANNEL,
  decodeFrame,
  encodeFrame,
  negotiateProtocol,
  offeredProtocols,
} from './channel.js';
import { resizeDecoder, statusJSON, statusText, type TerminalSize } from './remotecommand.js';
import { parsePortQuery } from './portforward.js';

const foo = Buffer.from('foo\n');

test('binary subprotocols put the channel number in the first byte', () => {
  for (const p of [V5_CHANNEL, V4_CHANNEL, CHANNEL, NO_SUBPROTOCOL]) {
    assert.deepEqual(encodeFrame(p, 0, foo), Buffer.from([0, 102, 111, 111, 10]), p.name);
    assert.deepEqual(encodeFrame(p, 1, new Uint8Array(0)), Buffer.from([1]), p.name);
    assert.deepEqual(decodeFrame(p, Buffer.from([0, 102, 111, 111, 10]), 5), { kind: 'data', channel: 0, payload: foo });
  }
});

test('base64 subprotocols use an ASCII channel digit and a base64 payload (the wsstream doc example)', () => {
  for (const p of [V4_BASE64_CHANNEL, BASE64_CHANNEL]) {
    assert.equal(encodeFrame(p, 1, Buffer.from('\n')), '1Cg==');
    assert.equal(encodeFrame(p, 0, foo), '0Zm9vCg==');
    assert.equal(encodeFrame(p, 3, new Uint8Array(0)), '3');
    assert.equal(encodeFrame(p, 10, Buffer.from([0])), ':AA==', "channel 10 is '0'+10");
    assert.deepEqual(decodeFrame(p, Buffer.from('0Zm9vCg=='), 5), { kind: 'data', channel: 0, payload: foo });
    assert.deepEqual(decodeFrame(p, Buffer.from('4'), 5), { kind: 'data', channel: 4, payload: Buffer.alloc(0) });
    assert.deepEqual(decodeFrame(p, Buffer.from('0Zm9v\r\nCg=='), 5), { kind: 'data', channel: 0, payload: foo }, 'Go skips CR/LF');
  }
});

test('every byte value survives a round trip in every subprotocol', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  for (const p of REMOTECOMMAND_PROTOCOLS) {
    const encoded = encodeFrame(p, 2, all);
    const decoded = decodeFrame(p, Buffer.from(encoded), 5);
    assert.deepEqual(decoded, { kind: 'data', channel: 2, payload: all }, p.name || '(none)');
  }
});

test('the v5 close signal decodes to the channel it closes, only on v5', () => {
  assert.deepEqual(decodeFrame(V5_CHANNEL, Buffer.from([255, 0]), 5), { kind: 'close', channel: 0 });
  assert.equal(decodeFrame(V4_CHANNEL, Buffer.from([255, 0]), 5).kind, 'invalid', 'v4 has no channel 255');
  assert.equal(decodeFrame(CHANNEL, Buffer.from([255, 0]), 5).kind, 'invalid');
});

test('garbage decodes as invalid with a reason that fits a close frame', () => {
  const cases: [typeof V5_CHANNEL, Buffer, RegExp][] = [
    [V5_CHANNEL, Buffer.alloc(0), /empty message/],
    [V5_CHANNEL, Buffer.from([5, 1]), /unknown channel 5/],
    [V5_CHANNEL, Buffer.from([255]), /close signal of 1 bytes/],
    [V5_CHANNEL, Buffer.from([255, 0, 0]), /close signal of 3 bytes/],
    [V5_CHANNEL, Buffer.from([255, 7]), /close signal for unknown channel 7/],
    [V4_CHANNEL, Buffer.from([200]), /unknown channel 200/],
    [V4_BASE64_CHANNEL, Buffer.from('9AA=='), /unknown channel "9"/],
    [V4_BASE64_CHANNEL, Buffer.from('\x00AA=='), /unknown channel/],
    [V4_BASE64_CHANNEL, Buffer.from('0Zm9vCg'), /not base64/],
    [V4_BASE64_CHANNEL, Buffer.from('0Zm9v!g=='), /not base64/],
    [BASE64_CHANNEL, Buffer.from('0=AAA'), /not base64/],
    [BASE64_CHANNEL, Buffer.alloc(0), /empty message/],
  ];
  for (const [p, message, reason] of cases) {
    const decoded = decodeFrame(p, message, 5);
    assert.equal(decoded.kind, 'invalid', `${p.name} ${message.toString('hex')}`);
    if (decoded.kind === 'invalid') {
      assert.match(decoded.reason, reason);
      assert.ok(Buffer.byteLength(decoded.reason) <= 123);
    }
  }
});

test('negotiation prefers v5 > v4 > pre-v4, binary before base64, whatever the client order', () => {
  const pick = (offer: string[], supported = REMOTECOMMAND_PROTOCOLS): string | undefined => negotiateProtocol(offer, supported)?.name;
  assert.equal(pick(['channel.k8s.io', 'v4.channel.k8s.io', 'v5.channel.k8s.io']), 'v5.channel.k8s.io');
  assert.equal(pick(['base64.channel.k8s.io', 'v4.base64.channel.k8s.io']), 'v4.base64.channel.k8s.io');
  assert.equal(pick(['v4.base64.channel.k8s.io', 'v4.channel.k8s.io']), 'v4.channel.k8s.io');
  assert.equal(pick(['v3.channel.k8s.io', 'channel.k8s.io']), 'channel.k8s.io');
  assert.equal(pick(['base64.channel.k8s.io']), 'base64.channel.k8s.io');
  assert.equal(pick([]), '', 'no offer: binary without a subprotocol, as kubelet');
  assert.equal(pick(['v9.channel.k8s.io']), undefined);
  assert.equal(pick(['']), undefined, 'an empty token is not an offer of nothing');
  // client-node's list
  assert.equal(pick(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'], PORTFORWARD_PROTOCOLS), 'v4.channel.k8s.io');
  assert.equal(pick(['v5.channel.k8s.io', 'channel.k8s.io'], PORTFORWARD_PROTOCOLS), undefined, 'port-forward is v4 only');
});

test('Sec-WebSocket-Protocol tokens are split on commas and trimmed', () => {
  assert.deepEqual(offeredProtocols(' v5.channel.k8s.io, v4.channel.k8s.io ,channel.k8s.io'), ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io']);
  assert.deepEqual(offeredProtocols(['a, b', 'c']), ['a', 'b', 'c']);
  assert.deepEqual(offeredProtocols(undefined), []);
  assert.deepEqual(offeredProtocols(' , '), []);
});

test('the error channel status is byte-for-byte what kubelet writes', () => {
  assert.equal(statusJSON({}), '{"metadata":{},"status":"Success"}');
  assert.equal(statusJSON({ exitCode: 0 }), '{"metadata":{},"status":"Success"}');
  assert.equal(
    statusJSON({ exitCode: 3 }),
    '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
  );
  assert.equal(
    statusJSON({ exitCode: 2, error: "command 'sh -c exit 2' exited with 2: <none>" }),
    '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command \'sh -c exit 2\' exited with 2: \\u003cnone\\u003e","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"2"}]}}',
    'Go escapes < and >',
  );
  assert.equal(
    statusJSON({ error: 'container "abc" is not running' }),
    '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: container \\"abc\\" is not running","reason":"InternalError","details":{"causes":[{"message":"error executing command in container: container \\"abc\\" is not running"}]},"code":500}',
  );
  assert.equal(
    statusJSON({ error: 'gone' }, 'attach'),
    '{"metadata":{},"status":"Failure","message":"Internal error occurred: error attaching to container: gone","reason":"InternalError","details":{"causes":[{"message":"error attaching to container: gone"}]},"code":500}',
  );
  assert.equal(statusText({ exitCode: 0 }), undefined, 'pre-v4 writes nothing on success');
  assert.equal(statusText({ exitCode: 3 }), 'command terminated with non-zero exit code: exit status 3');
  assert.equal(statusText({ error: 'x' }), 'Internal error occurred: error executing command in container: x');
});

test('resize messages decode like a json.Decoder: split, joined, either case', () => {
  const seen: TerminalSize[] = [];
  const d = resizeDecoder((s) => seen.push(s));
  d.data(Buffer.from('{"Width":80,"Height":24}'));
  d.data(Buffer.from('{"height":50,"width":132}{"Width":1,'));
  d.data(Buffer.from(' "Height":2}\n'));
  assert.deepEqual(seen, [
    { width: 80, height: 24 },
    { width: 132, height: 50 },
    { width: 1, height: 2 },
  ]);
  d.data(Buffer.from('{"Width":-1}'));
  d.data(Buffer.from('{"Width":5,"Height":5}'));
  assert.equal(seen.length, 3, 'after an undecodable value, resizes stop as in kubelet');
  const e: TerminalSize[] = [];
  const notJSON = resizeDecoder((s) => e.push(s));
  notJSON.data(Buffer.from('hello'));
  notJSON.data(Buffer.from('{"Width":5,"Height":5}'));
  assert.equal(e.length, 0);
});

test('port-forward ports come from every port parameter, comma lists included', () => {
  assert.deepEqual(parsePortQuery(new URLSearchParams('port=80&port=443,8080')), [80, 443, 8080]);
  assert.deepEqual(parsePortQuery(new URLSearchParams('ports=5000'), 'ports'), [5000]);
  for (const bad of ['', 'port=', 'port=0', 'port=65536', 'port=80,', 'port=http', 'port=-1', 'port=1e3']) {
    assert.throws(() => parsePortQuery(new URLSearchParams(bad)), { code: 'SKIFF_INVALID_ARGUMENT' }, bad);
  }
});
