// `skiff logs`: reads the container's log file itself, as crictl does (through kubelet's log
// reader): ContainerStatus names the file, cri-log.ts turns its records into lines, stdout lines go
// to our stdout and stderr lines to our stderr. With -f it keeps reading as the file grows, until
// the container is no longer running; a file replaced under the same name (rotation after
// ReopenContainerLog) is finished and then the new one is read from its start, and a file cut
// short in place (copytruncate) is read again from its start.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { defineCommand, type CommandContext } from '../command.js';
import { parseDuration, usageError } from '../args.js';
import { CriLogDecoder, formatLine, LineTail, parseSince, type CriLogLine, type LineFormat } from '../cri-log.js';
import { errnoCode, errorMessage, SkiffError } from '../../../common/errors.js';

/** How often a follower looks at the file and the container when no change was signalled (kubelet: 1s). */
export const FOLLOW_CHECK_MS = 1000;
const CHUNK_BYTES = 64 * 1024;

export const logsCommand = defineCommand({
  name: 'logs',
  summary: 'Fetch the logs of a container',
  args: 'CONTAINER-ID',
  options: {
    follow: { type: 'boolean', short: 'f', description: 'Follow log output' },
    previous: { type: 'boolean', short: 'p', description: 'Print the logs for the previous instance of the container in a pod if it exists' },
    tail: { type: 'string', value: 'N', description: 'Number of lines to show from the end of the logs (default: all)' },
    since: {
      type: 'string',
      value: 'TIME',
      description: 'Show logs since timestamp (e.g. 2013-01-02T13:23:37) or relative (e.g. 42m for 42 minutes)',
    },
    timestamps: { type: 'boolean', short: 't', description: 'Show timestamps' },
  },
  async run(ctx, values, positionals) {
    const id = positionals[0];
    if (id === undefined || id === '') throw usageError('ID cannot be empty');
    if (positionals.length > 1) throw usageError('logs takes exactly one container ID');
    const tail = parseTail(values.tail);
    const format: LineFormat = { timestamps: !!values.timestamps };
    if (values.since !== undefined) {
      const since = parseSince(values.since, Date.now(), parseDuration);
      if (since === undefined) throw usageError(`invalid --since "${values.since}": want a duration (42m), an RFC3339 time or Unix seconds`);
      format.since = since;
    }

    const request = { container_id: id };
    const r = await ctx.rpc('ContainerStatus', request, () => ctx.client().containerStatus(request, ctx.callOptions()));
    const status = r.status;
    if (!status?.log_path) throw new Error('the container has not set log path');
    let path = status.log_path;
    if (values.previous) {
      const attempt = status.metadata?.attempt ?? 0;
      if (attempt === 0) throw new Error(`previous terminated container ${status.metadata?.name ?? id} not found`);
      // kubelet names the file of each attempt <attempt>.log in the container's directory.
      path = `${path.slice(0, path.lastIndexOf('/') + 1)}${attempt - 1}${path.slice(path.lastIndexOf('.'))}`;
    }
    const running = async (): Promise<boolean> => {
      const s = await ctx.rpc('ContainerStatus', request, () => ctx.client().containerStatus(request, ctx.callOptions()));
      return s.status?.state === 'CONTAINER_RUNNING';
    };
    await readLog(ctx, path, { tail, format, follow: values.follow ? running : undefined });
  },
});

function parseTail(text: string | undefined): number {
  if (text === undefined) return -1;
  if (!/^-?\d+$/.test(text)) throw usageError(`invalid value "${text}" for flag -tail: must be a number of lines`);
  return Math.max(-1, Number(text));
}

interface ReadOptions {
  /** Lines to print from the end of what the file holds now; -1 for all. */
  tail: number;
  format: LineFormat;
  /** When following: whether the container still runs, asked each time the file has no more. */
  follow?: () => Promise<boolean>;
}

async function readLog(ctx: CommandContext, path: string, o: ReadOptions): Promise<void> {
  const decoder = new CriLogDecoder((line, err) => ctx.log.warn({ path, line }, `skipping a log record: ${err.message}`));
  const print = (lines: readonly CriLogLine[]): void => {
    for (const line of lines) {
      const text = formatLine(line, o.format);
      if (text === undefined) continue;
      if (line.stream === 'stdout') ctx.out(text);
      else ctx.err(text);
    }
  };
  let file = await LogFile.open(path);
  try {
    // The tail is of the lines the file holds now; whatever comes later is printed as it comes.
    // Without --tail, lines are printed as they are read rather than gathered first.
    const tail = o.tail >= 0 ? new LineTail(o.tail) : undefined;
    const first = (lines: readonly CriLogLine[]): void => (tail ? tail.add(lines) : print(lines));
    await file.readAvailable(decoder, first);
    if (!o.follow) {
      first(decoder.end());
      if (tail) print(tail.take());
      return;
    }
    if (tail) print(tail.take());
    const wake = new Wakeup(path);
    try {
      for (;;) {
        const stillRunning = await o.follow();
        await wake.next(stillRunning ? FOLLOW_CHECK_MS : 0);
        await file.readAvailable(decoder, print);
        const replaced = await file.replacement();
        if (replaced) {
          // Finish the old file (it may have grown before the rename), then go on with the new one.
          await file.readAvailable(decoder, print);
          await file.close();
          file = replaced;
          await file.readAvailable(decoder, print);
        }
        if (!stillRunning) break;
      }
    } finally {
      wake.close();
    }
    print(decoder.end());
  } finally {
    await file.close();
  }
}

/** An open log file read from where the last read stopped. */
class LogFile {
  private position = 0;
  private readonly buffer = Buffer.alloc(CHUNK_BYTES);

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly ino: number,
  ) {}

  static async open(path: string): Promise<LogFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      const what = errnoCode(err) === 'ENOENT' ? 'SKIFF_NOT_FOUND' : 'SKIFF_INTERNAL';
      throw new SkiffError(what, `failed to open log file "${path}": ${systemErrorText(err)}`, { cause: err });
    }
    const { ino } = await handle.stat();
    return new LogFile(path, handle, ino);
  }

  /**
   * Decodes everything up to the current end of the file, handing over the lines of each chunk as
   * it goes; a file cut short is read from its start.
   */
  async readAvailable(decoder: CriLogDecoder, sink: (lines: readonly CriLogLine[]) => void): Promise<void> {
    const { size } = await this.handle.stat();
    if (size < this.position) this.position = 0;
    for (;;) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, this.buffer.length, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      sink(decoder.push(this.buffer.subarray(0, bytesRead)));
    }
  }

  /** The file now at this path when it is another one (the runtime reopened its log). */
  async replacement(): Promise<LogFile | undefined> {
    try {
      const now = await stat(this.path);
      if (now.ino === this.ino) return undefined;
      return await LogFile.open(this.path);
    } catch (err) {
      // Between the rename and the reopen there is no file: keep the old one for now.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** `no such file or directory` rather than Node's `ENOENT: no such file or directory, open '<path>'`. */
function systemErrorText(err: unknown): string {
  const message = errorMessage(err);
  return /^E[A-Z]+: (.*), \w+ '.*'$/.exec(message)?.[1] ?? message;
}

function isNotFound(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT' || errnoCode((err as { cause?: unknown }).cause) === 'ENOENT';
}

/**
 * Resolves next() on a change in the log's directory or after a timeout, whichever comes first:
 * inotify makes a busy log prompt, and the timeout catches what a watch misses (and lets the
 * caller ask whether the container still runs).
 */
class Wakeup {
  private watcher: FSWatcher | undefined;
  private signalled = false;
  private resolve: (() => void) | undefined;

  constructor(path: string) {
    const name = basename(path);
    try {
      this.watcher = watch(dirname(path), (_event, file) => {
        if (file === null || file === name || String(file).startsWith(`${name}.`)) this.fire();
      });
      // A watch that fails later (the directory went away) leaves the timeout to do the work.
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = undefined;
    }
  }

  async next(timeoutMs: number): Promise<void> {
    if (this.signalled || timeoutMs === 0) {
      this.signalled = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.fire(), timeoutMs);
      this.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.signalled = false;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.fire();
  }

  private fire(): void {
    this.signalled = true;
    const resolve = this.resolve;
    this.resolve = undefined;
    resolve?.();
  }
}
