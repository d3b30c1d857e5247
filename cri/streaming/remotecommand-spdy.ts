// exec and attach over SPDY (kubelet cri/streaming/remotecommand/httpstream.go): the client opens
// one stream per stdio channel, named by its "streamtype" header; once every stream the request
// asked for exists the command runs, and its outcome is written on the error stream in the
// negotiated version's format before the connection closes.
//
//   channel.k8s.io     v1  error text on failure, nothing on success
//   v2.channel.k8s.io  v2  as v1 (v2 fixed how the error stream is ordered and replied to)
//   v3.channel.k8s.io  v3  adds the resize stream (tty only)
//   v4.channel.k8s.io  v4  metav1.Status JSON on the error stream, success included
//   v5.channel.k8s.io  v5  as v4: its close signal is a WebSocket matter; SPDY half-closes streams
import { PassThrough, finished, type Readable, type Writable } from 'node:stream';
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { TerminalResizes, type AttachRequest, type ExecIO, type StreamingBackend } from './backend.js';
import type { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';
import { acceptStream } from './spdy-reply.js';
import { resizeDecoder, statusJSON, statusText, type ExitStatus } from './ws/remotecommand.js';
import type { CachedRequest } from './request-cache.js';

const log = logger('streaming');

/** Offered to SPDY clients; the client's order picks (kubectl lists newest first). */
export const REMOTECOMMAND_SPDY_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

/** How long a client has to close the connection after the status was written. */
const STATUS_GRACE_MS = 5_000;

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

export function protocolVersion(protocol: string): number {
  const m = /^v(\d)\.channel\.k8s\.io$/.exec(protocol);
  return m ? Number(m[1]) : 1;
}

/** The streamtypes a client must open for `req` under protocol `version`. */
export function expectedStreams(req: AttachRequest, version: number): Set<StreamType> {
  const want = new Set<StreamType>(['error']);
  if (req.stdin) want.add('stdin');
  if (req.stdout) want.add('stdout');
  if (req.stderr && !req.tty) want.add('stderr');
  if (req.tty && version >= 3) want.add('resize');
  return want;
}

export interface RemoteCommandSpdyOptions {
  readonly streamCreationTimeoutMs: number;
}

/** Serves one exec or attach on an upgraded session; resolves when the session is closed. */
export async function serveRemoteCommandSpdy(
  session: SpdySession,
  protocol: string,
  request: Extract<CachedRequest, { kind: 'exec' | 'attach' }>,
  backend: StreamingBackend,
  options: RemoteCommandSpdyOptions,
): Promise<void> {
  const version = protocolVersion(protocol);
  const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  if (session.closed) return;
  const streams = await waitForStreams(session, expectedStreams(request.req, version), options.streamCreationTimeoutMs);
  if (!streams) {
    session.destroy();
    return sessionClosed;
  }
  const abort = new AbortController();
  session.once('close', () => abort.abort(new Error('client connection closed')));
  const resize = new TerminalResizes();
  const resizeStream = streams.get('resize');
  if (resizeStream) {
    const decoder = resizeDecoder((size) => resize.push(size));
    resizeStream.on('data', (d: Buffer) => decoder.data(d));
  }
  // The server never writes to these; half-close them now (kubelet closes stdin's write side too).
  for (const t of ['stdin', 'resize'] as const) streams.get(t)?.end();
  // Nobody reads what a client might send on output streams; let their ends arrive.
  for (const t of ['stdout', 'stderr', 'error'] as const) streams.get(t)?.resume();

  const io: ExecIO = {
    stdin: stdinOf(streams.get('stdin')),
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    tty: request.req.tty,
    resize,
    signal: abort.signal,
  };
  const status = await run(request, backend, io);
  if (!session.closed) {
    await Promise.all([io.stdout, io.stderr].flatMap((w) => (w ? [endAndWait(w)] : [])));
    const errorStream = streams.get('error')!;
    const text = version >= 4 ? statusJSON(status, request.kind) : statusText(status, request.kind);
    if (text !== undefined && !errorStream.destroyed) errorStream.write(text);
    await endAndWait(errorStream);
    // kubelet resets every stream and closes the connection once the status is written. A client
    // that parses asynchronously (spdy-transport inflates headers on a zlib thread) would lose the
    // status to that reset; so go away gracefully and let the client close, as kubectl does once it
    // has read the status, cutting it off only after a grace period.
    session.goAway();
    const timer = setTimeout(() => session.destroy(), STATUS_GRACE_MS).unref();
    session.once('close', () => clearTimeout(timer));
  }
  return sessionClosed;
}

async function run(request: Extract<CachedRequest, { kind: 'exec' | 'attach' }>, backend: StreamingBackend, io: ExecIO): Promise<ExitStatus> {
  try {
    if (request.kind === 'exec') {
      const { exitCode } = await backend.exec(request.req, io);
      return { exitCode };
    }
    await backend.attach(request.req, io);
    return {};
  } catch (err) {
    log.debug({ err: errorMessage(err), containerId: request.req.containerId }, `${request.kind} failed`);
    return { error: errorMessage(err) };
  }
}

/**
 * Collects the client's streams by streamtype; resolves undefined if they are not all there within
 * `timeoutMs` ("timed out waiting for client to create streams") or the session closes first.
 */
function waitForStreams(session: SpdySession, want: Set<StreamType>, timeoutMs: number): Promise<Map<StreamType, SpdyStream> | undefined> {
  const got = new Map<StreamType, SpdyStream>();
  return new Promise((resolve) => {
    const done = (result: Map<StreamType, SpdyStream> | undefined): void => {
      clearTimeout(timer);
      session.off('stream', onStream);
      session.off('close', onClose);
      resolve(result);
    };
    const timer = setTimeout(() => {
      log.info({ missing: [...want].filter((t) => !got.has(t)) }, 'timed out waiting for client to create streams');
      done(undefined);
    }, timeoutMs);
    const onClose = (): void => done(undefined);
    const onStream = (stream: SpdyStream): void => {
      const type = stream.header('streamtype') as StreamType | undefined;
      if (type === undefined || !want.has(type) || got.has(type)) {
        log.debug({ streamtype: type }, 'unexpected stream type; resetting the stream');
        stream.reset();
        return;
      }
      acceptStream(stream);
      got.set(type, stream);
      if (got.size === want.size) done(got);
    };
    session.on('stream', onStream);
    session.once('close', onClose);
  });
}

/**
 * The backend reads stdin through a stream of its own: a consumer that destroys its input when
 * done (for await does) must not reset the SPDY stream, whose reply may still be on its way.
 * A client that vanishes still destroys what the backend holds.
 */
function stdinOf(stream: SpdyStream | undefined): Readable | undefined {
  if (!stream) return undefined;
  const stdin = new PassThrough();
  stream.pipe(stdin);
  stream.once('close', () => {
    if (!stream.readableEnded) stdin.destroy();
  });
  stdin.once('close', () => {
    stream.unpipe(stdin);
    stream.resume(); // drop what the client still sends
  });
  return stdin;
}

function endAndWait(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (!w.writableEnded && !w.destroyed) w.end();
    finished(w, { readable: false }, () => resolve());
  });
}
