// The CRI container log format, as kubelet's log reader (k8s.io/cri-client/pkg/logs) reads it and
// `skiff logs` prints it: one record per line, `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>`.
// A runtime splits a long line into P (partial) records closed by an F (full) record; the decoder
// joins them back into one line before anything is printed, so that a multi-byte character split
// across records, --tail and --since all see whole lines. Pure: bytes in, lines out.

export type LogStream = 'stdout' | 'stderr';

/** One record of a log file. */
export interface CriLogRecord {
  /** The timestamp as written. */
  timestamp: string;
  /** The same instant in nanoseconds since the epoch. */
  time: bigint;
  stream: LogStream;
  /** P: the line goes on in the next record of this stream. */
  partial: boolean;
  content: Buffer;
}

/** One logical line: its records joined, stamped with the first record's time. */
export interface CriLogLine {
  timestamp: string;
  time: bigint;
  stream: LogStream;
  /** Ends with '\n', except for a line the file ends in the middle of. */
  content: Buffer;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
// RFC3339 with up to nine fractional digits (Go's RFC3339Nano is lenient about their number).
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parses one record (without its newline); throws on anything that is not the CRI format. */
export function parseCriLogRecord(line: Buffer): CriLogRecord {
  const first = line.indexOf(SPACE);
  if (first < 0) throw new Error('timestamp is not found');
  const timestamp = line.toString('latin1', 0, first);
  const time = timestampNanos(timestamp);
  if (time === undefined) throw new Error(`unexpected timestamp format ${JSON.stringify(timestamp)}`);
  const second = line.indexOf(SPACE, first + 1);
  if (second < 0) throw new Error('stream type is not found');
  const stream = line.toString('latin1', first + 1, second);
  if (stream !== 'stdout' && stream !== 'stderr') throw new Error(`unexpected stream type ${JSON.stringify(stream)}`);
  // Tags are `:`-separated and only the first (P or F) means anything yet; an empty line may be
  // written without the space after its tag.
  const third = line.indexOf(SPACE, second + 1);
  const tags = line.toString('latin1', second + 1, third < 0 ? line.length : third);
  if (tags === '') throw new Error('log tag is not found');
  const content = third < 0 ? Buffer.alloc(0) : line.subarray(third + 1);
  return { timestamp, time, stream, partial: tags.split(':')[0] === 'P', content };
}

/** Nanoseconds since the epoch of an RFC3339Nano timestamp, or undefined if it is not one. */
export function timestampNanos(text: string): bigint | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** kubelet's output form of a timestamp (RFC3339NanoFixed): always nine fractional digits, zone kept. */
export function fixedTimestamp(text: string): string {
  const m = TIMESTAMP.exec(text);
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}` : text;
}

/**
 * Turns the bytes of a log file, fed in chunks of any size, into whole lines. Records that do not
 * parse go to `onInvalid` and are skipped, as kubelet skips them.
 */
export class CriLogDecoder {
  private rest: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<LogStream, { first: CriLogRecord; parts: Buffer[] }>();

  constructor(private readonly onInvalid: (line: string, err: Error) => void = () => undefined) {}

  /** The lines that the bytes so far complete. */
  push(chunk: Buffer): CriLogLine[] {
    const data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: CriLogLine[] = [];
    let start = 0;
    for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
      this.record(data.subarray(start, nl), lines);
      start = nl + 1;
    }
    // Copy: the remainder must not pin the caller's (possibly reused) read buffer.
    this.rest = Buffer.from(data.subarray(start));
    return lines;
  }

  /** At the end of the file: a last record without its newline, then lines left open by P records. */
  end(): CriLogLine[] {
    const lines: CriLogLine[] = [];
    if (this.rest.length > 0) this.record(this.rest, lines, false);
    this.rest = Buffer.alloc(0);
    for (const [stream, { first, parts }] of this.pending) {
      lines.push({ timestamp: first.timestamp, time: first.time, stream, content: Buffer.concat(parts) });
    }
    this.pending.clear();
    return lines;
  }

  private record(bytes: Buffer, lines: CriLogLine[], terminated = true): void {
    let record: CriLogRecord;
    try {
      record = parseCriLogRecord(bytes);
    } catch (err) {
      this.onInvalid(bytes.toString('utf8'), err as Error);
      return;
    }
    const open = this.pending.get(record.stream);
    if (record.partial && terminated) {
      if (open) open.parts.push(record.content);
      else this.pending.set(record.stream, { first: record, parts: [record.content] });
      return;
    }
    this.pending.delete(record.stream);
    const first = open?.first ?? record;
    const parts = [...(open?.parts ?? []), record.content];
    if (terminated) parts.push(Buffer.from('\n'));
    lines.push({ timestamp: first.timestamp, time: first.time, stream: record.stream, content: Buffer.concat(parts) });
  }
}

/** Keeps the last `limit` lines (all when limit < 0). */
export class LineTail {
  private lines: CriLogLine[] = [];
  constructor(private readonly limit: number) {}

  add(lines: readonly CriLogLine[]): void {
    if (this.limit === 0) return;
    this.lines.push(...lines);
    // Trim in batches so that a long file costs amortised O(1) per line.
    if (this.limit > 0 && this.lines.length > 2 * this.limit + 1024) this.lines = this.lines.slice(-this.limit);
  }

  /** The lines kept so far; the tail is empty afterwards. */
  take(): CriLogLine[] {
    const out = this.limit > 0 ? this.lines.slice(-this.limit) : this.lines;
    this.lines = [];
    return out;
  }
}

export interface LineFormat {
  /** Lines stamped earlier than this (ns since the epoch) are left out. */
  since?: bigint;
  /** Prefix each line with its timestamp, as `--timestamps` does. */
  timestamps?: boolean;
}

/** The text of a line as `logs` prints it, or undefined when --since leaves it out. */
export function formatLine(line: CriLogLine, format: LineFormat): string | undefined {
  if (format.since !== undefined && line.time < format.since) return undefined;
  const text = line.content.toString('utf8');
  return format.timestamps ? `${fixedTimestamp(line.timestamp)} ${text}` : text;
}

// ---- --since ----

const SINCE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * `--since` as crictl reads it (docker's GetTimestamp): a Go duration back from `now` (`42m`), an
 * RFC3339 time or a prefix of one (`2013-01-02T13:23:37`, local time when it has no zone), or Unix
 * seconds (`1700000000.5`). Nanoseconds since the epoch; undefined when it is none of those.
 */
export function parseSince(text: string, nowMs: number, parseDuration: (text: string) => number): bigint | undefined {
  if (text !== '0' && /^[-+]?[\d.]+(ns|us|µs|μs|ms|s|m|h)/.test(text)) {
    try {
      return BigInt(Math.round((nowMs - parseDuration(text)) * 1e6));
    } catch {
      return undefined;
    }
  }
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (unix) return BigInt(unix[1]) * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0'));
  const m = SINCE_TIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone] = m;
  const ms = zone
    ? Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone}`)
    : new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime();
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
}
