// The CRI log format: records, partial-line reassembly, tail, since and timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CriLogDecoder, fixedTimestamp, formatLine, LineTail, parseCriLogRecord, parseSince, timestampNanos, type CriLogLine } from './cri-log.js';
import { parseDuration } from '../../common/duration.js';

const text = (lines: readonly CriLogLine[]): string[] => lines.map((l) => `${l.stream}:${l.content.toString('utf8')}`);

void test('parseCriLogRecord reads timestamp, stream, tag and content, keeping spaces in the content', () => {
  const r = parseCriLogRecord(Buffer.from('2016-10-06T00:17:09.669794202Z stdout F hello  world '));
  assert.equal(r.timestamp, '2016-10-06T00:17:09.669794202Z');
  assert.equal(r.time, 1475713029669794202n);
  assert.equal(r.stream, 'stdout');
  assert.equal(r.partial, false);
  assert.equal(r.content.toString(), 'hello  world ');
  assert.equal(parseCriLogRecord(Buffer.from('2016-10-06T00:17:09Z stderr P:x y')).partial, true, 'extra tags are ignored');
  assert.equal(parseCriLogRecord(Buffer.from('2016-10-06T00:17:09Z stdout F')).content.length, 0);
  for (const bad of ['nonsense', '2016-10-06 stdout F x', '2016-10-06T00:17:09Z stdin F x', '2016-10-06T00:17:09Z stdout']) {
    assert.throws(() => parseCriLogRecord(Buffer.from(bad)), Error, bad);
  }
});

void test('a 40 KiB line split in three P/P/F records comes out as one line, stamped with its first record', () => {
  const line = 'x'.repeat(40 * 1024);
  const parts = [line.slice(0, 16384), line.slice(16384, 32768), line.slice(32768)];
  const file =
    `2024-01-01T00:00:01.000000001Z stdout P ${parts[0]}\n` +
    `2024-01-01T00:00:01.5Z stderr F interleaved\n` +
    `2024-01-01T00:00:02Z stdout P ${parts[1]}\n` +
    `2024-01-01T00:00:03Z stdout F ${parts[2]}\n`;
  // Fed in small uneven chunks, so records and even characters are split across pushes.
  const decoder = new CriLogDecoder();
  const lines: CriLogLine[] = [];
  const bytes = Buffer.from(file);
  for (let i = 0; i < bytes.length; i += 7001) lines.push(...decoder.push(bytes.subarray(i, i + 7001)));
  lines.push(...decoder.end());
  assert.deepEqual(text(lines), ['stderr:interleaved\n', `stdout:${line}\n`]);
  assert.equal(lines[1].timestamp, '2024-01-01T00:00:01.000000001Z');
});

void test('a multi-byte character split between two P records is whole again', () => {
  const euro = Buffer.from('€');
  const file = Buffer.concat([
    Buffer.from('2024-01-01T00:00:00Z stdout P a'),
    euro.subarray(0, 1),
    Buffer.from('\n2024-01-01T00:00:00Z stdout F '),
    euro.subarray(1),
    Buffer.from('b\n'),
  ]);
  const decoder = new CriLogDecoder();
  assert.deepEqual(text(decoder.push(file)), ['stdout:a€b\n']);
});

void test('the decoder skips bad records, reports them, and ends an unterminated last record', () => {
  const bad: string[] = [];
  const decoder = new CriLogDecoder((line) => bad.push(line));
  const lines = decoder.push(Buffer.from('garbage\n2024-01-01T00:00:00Z stdout F ok\n2024-01-01T00:00:01Z stdout F no newline'));
  assert.deepEqual(text(lines), ['stdout:ok\n']);
  assert.deepEqual(bad, ['garbage']);
  assert.deepEqual(text(decoder.end()), ['stdout:no newline']);
});

void test('the decoder flushes a line left open by P records at the end', () => {
  const decoder = new CriLogDecoder();
  assert.deepEqual(decoder.push(Buffer.from('2024-01-01T00:00:00Z stdout P half\n')), []);
  assert.deepEqual(text(decoder.end()), ['stdout:half']);
});

void test('LineTail keeps the last N whole lines, all for -1, none for 0', () => {
  const decoder = new CriLogDecoder();
  const records = Array.from({ length: 3000 }, (_, i) => `2024-01-01T00:00:00Z stdout F line ${i}\n`).join('');
  // Line 2999 is long and split, and still counts as one line.
  const all = decoder.push(Buffer.from(`${records}2024-01-01T00:00:01Z stdout P long \n2024-01-01T00:00:01Z stdout F end\n`));
  const tail = (n: number): string[] => {
    const t = new LineTail(n);
    for (let i = 0; i < all.length; i += 100) t.add(all.slice(i, i + 100));
    return text(t.take());
  };
  assert.deepEqual(tail(2), ['stdout:line 2999\n', 'stdout:long end\n']);
  assert.equal(tail(-1).length, 3001);
  assert.deepEqual(tail(0), []);
  assert.equal(tail(5000).length, 3001);
});

void test('formatLine drops lines before --since and prefixes a fixed-width timestamp with --timestamps', () => {
  const decoder = new CriLogDecoder();
  const [early, late] = decoder.push(
    Buffer.from('2024-01-01T00:00:00.5+02:00 stdout F early\n2024-01-01T10:00:00Z stderr F late\n'),
  );
  assert.equal(formatLine(early, {}), 'early\n');
  assert.equal(formatLine(early, { timestamps: true }), '2024-01-01T00:00:00.500000000+02:00 early\n');
  const since = timestampNanos('2024-01-01T05:00:00Z');
  assert.equal(formatLine(early, { since }), undefined);
  assert.equal(formatLine(late, { since, timestamps: true }), '2024-01-01T10:00:00.000000000Z late\n');
  assert.equal(fixedTimestamp('2024-01-01T10:00:00.123Z'), '2024-01-01T10:00:00.123000000Z');
});

void test('parseSince takes a Go duration back from now, RFC3339 times and Unix seconds', () => {
  const now = Date.parse('2024-06-01T12:00:00Z');
  const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;
  assert.equal(parseSince('42m', now, parseDuration), at('2024-06-01T11:18:00Z'));
  assert.equal(parseSince('1h30m', now, parseDuration), at('2024-06-01T10:30:00Z'));
  assert.equal(parseSince('2013-01-02T13:23:37Z', now, parseDuration), at('2013-01-02T13:23:37Z'));
  assert.equal(parseSince('2013-01-02T13:23:37.25+01:00', now, parseDuration), at('2013-01-02T12:23:37.25Z'));
  assert.equal(parseSince('2013-01-02T13:23:37', now, parseDuration), BigInt(new Date(2013, 0, 2, 13, 23, 37).getTime()) * 1_000_000n, 'no zone: local time');
  assert.equal(parseSince('2013-01-02', now, parseDuration), BigInt(new Date(2013, 0, 2).getTime()) * 1_000_000n);
  assert.equal(parseSince('1700000000.5', now, parseDuration), 1_700_000_000_500_000_000n);
  for (const bad of ['yesterday', '5 minutes', '2013-13-45T99:00:00Z', '']) assert.equal(parseSince(bad, now, parseDuration), undefined, bad);
});
