// Attach through the container's monitor (native/monitor-attach.c), for kubectl attach: one
// connection per session, an "attach" request line, {"ok":true}, then frames both ways: the
// container's output (a copy of what goes to the CRI log) and its exit status from the monitor,
// stdin, end of stdin and terminal size to it. The wire format is in monitor-protocol.ts.
//
// Backpressure goes all the way: a stdout/stderr stream that is not read pauses the socket (and a
// monitor whose buffer for this session overflows disconnects it, so the container never waits);
// writeStdin resolves only once the kernel has taken the bytes, which it does at the pace the
// container reads its stdin.
import type { Readable } from 'node:stream';
import { formatAttachRequest, type AttachRequest } from './monitor-protocol.js';
import { MonitorSession, openMonitorSession } from './monitor-session.js';

export interface MonitorAttachOptions extends AttachRequest {
  /** How long to wait for the monitor's answer to the request. */
  timeoutMs?: number;
}

export interface AttachExit {
  /** 128+signal when a signal killed the container. */
  exitCode: number;
  signal: number;
}

export interface AttachSession {
  /** The container's output from the attach on (with a tty, the terminal); null when not asked
   * for. Ends with the session. Not reading it stalls the session, and the monitor then cuts it. */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Sends bytes to the container's stdin; resolves once the kernel took them (so they arrive even
   * if the session is detached right after), rejects when the session has ended. */
  writeStdin(data: Uint8Array): Promise<void>;
  /** This client's stdin has ended; with StdinOnce (and no tty) the container's stdin closes. */
  closeStdin(): Promise<void>;
  /** The terminal's size, in columns and rows; the monitor ignores it without a tty. */
  resize(width: number, height: number): void;
  /** The container's exit status; undefined when the session ended without one (detached, the
   * client fell behind, the monitor went away). */
  readonly exited: Promise<AttachExit | undefined>;
  /** Ends the session at once; the container runs on. */
  detach(): void;
}

export async function monitorAttach(ctlSocket: string, o: MonitorAttachOptions): Promise<AttachSession> {
  const { sock, early } = await openMonitorSession(ctlSocket, formatAttachRequest(o), {
    what: `attach via monitor at ${ctlSocket}`,
    timeoutMs: o.timeoutMs ?? 5000,
    frameMayLead: false,
  });
  const s = new MonitorSession<AttachExit>(
    sock,
    {
      kind: 'attach',
      what: 'attach',
      stdin: o.stdin,
      stdout: o.stdout,
      stderr: o.stderr,
      resizes: true,
      frameLabel: 'monitor attach',
      exit: (e) => ({ exitCode: e.exitCode, signal: e.signal }),
    },
    early,
  );
  return {
    stdout: s.stdout,
    stderr: s.stderr,
    exited: s.exited,
    writeStdin: (data) => s.writeStdin(data),
    closeStdin: () => s.closeStdin(),
    resize: (width, height) => s.resize(width, height),
    detach: () => s.close(),
  };
}
