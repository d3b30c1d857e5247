// The terminal behind the CLI's stdin, as `exec -t` and `attach -t` need it: whether there is one,
// raw mode, its size and its resizes (SIGWINCH, which Node reports as 'resize' on stdout). main()
// takes one so that tests can stand in for a terminal; the process's own is built on first use.
import { spawnSync } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';

export interface Terminal {
  /** Whether stdin is a terminal. */
  readonly isTTY: boolean;
  setRawMode(raw: boolean): unknown;
  /** The size in columns and rows; undefined when unknown (stdout is not a terminal). */
  readonly columns?: number;
  readonly rows?: number;
  /** 'resize' fires after the size changed. */
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

/** No terminal: stdin is a pipe, a file or a test's stream. */
export const NO_TERMINAL: Terminal = {
  isTTY: false,
  setRawMode: () => undefined,
  on: () => undefined,
  off: () => undefined,
};

/** The process's terminal: raw mode on stdin; size and resizes from stdout, as kubectl reads them. */
export function processTerminal(): Terminal {
  const stdin = process.stdin;
  const stdout = process.stdout;
  return {
    get isTTY() {
      return stdin.isTTY === true;
    },
    setRawMode: (raw) => {
      stdin.setRawMode(raw);
      // libuv's raw mode keeps output processing (ONLCR), so the remote terminal's "\r\n" would
      // reach the screen as "\r\r\n" and a full-screen program's bare "\n" (cursor down) as a
      // new line. kubectl's raw mode (cfmakeraw) turns it off; Node cannot, stty can. Leaving raw
      // mode restores the terminal's own settings, OPOST included.
      if (raw) spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
    },
    get columns() {
      return stdout.isTTY ? stdout.columns : undefined;
    },
    get rows() {
      return stdout.isTTY ? stdout.rows : undefined;
    },
    on: (_event, listener) => stdout.on('resize', listener),
    off: (_event, listener) => stdout.off('resize', listener),
  };
}

/** crictl's detach sequence for a terminal session (moby/term's default): ctrl-p, ctrl-q. */
export const DETACH_KEYS: Uint8Array = Uint8Array.of(0x10, 0x11);

/**
 * Passes input through until it contains `keys`, then calls `onDetach` and drops the rest (moby
 * term.NewEscapeProxy). Bytes that might start the sequence are held back until the next byte
 * decides; a partial sequence followed by something else goes through as typed.
 */
export function detachFilter(onDetach: () => void, keys: Uint8Array = DETACH_KEYS): Transform {
  let matched = 0;
  let detached = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      if (detached) return done();
      const out: number[] = [];
      for (const byte of chunk) {
        if (byte === keys[matched]) {
          if (++matched < keys.length) continue;
          detached = true;
          if (out.length > 0) this.push(Buffer.from(out));
          onDetach();
          return done();
        }
        // A broken sequence goes through as typed; the byte that broke it may start a new one.
        for (let i = 0; i < matched; i++) out.push(keys[i]);
        matched = byte === keys[0] ? 1 : 0;
        if (matched === 0) out.push(byte);
      }
      done(null, out.length > 0 ? Buffer.from(out) : undefined);
    },
    flush(done: TransformCallback) {
      done(null, matched > 0 && !detached ? Buffer.from(keys.subarray(0, matched)) : undefined);
    },
  });
}
