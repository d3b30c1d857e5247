// port-forward over SPDY (kubelet cri/streaming/portforward/httpstream.go): for each connection
// the client makes to a forwarded port it opens an error stream and a data stream that share a
// "requestID" header and carry the "port" header. Once both exist the data stream is joined to a
// connection into the pod; a failure is written as text on the error stream.
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { StreamingBackend } from './backend.js';
import type { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';
import { acceptStream } from './spdy-reply.js';
import { splice } from './splice.js';

const log = logger('streaming');

export const PORTFORWARD_SPDY_PROTOCOLS = ['portforward.k8s.io'] as const;

interface StreamPair {
  readonly requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

let nextConnection = 1;

/** Serves port-forward on an upgraded session; resolves when the session is closed. */
export function servePortForwardSpdy(
  session: SpdySession,
  podSandboxId: string,
  backend: StreamingBackend,
  options: { readonly streamCreationTimeoutMs: number },
): Promise<void> {
  const conn = nextConnection++;
  const pairs = new Map<string, StreamPair>();

  const onStream = (stream: SpdyStream): void => {
    const invalid = checkHeaders(stream);
    if (invalid) {
      // apimachinery resets a stream its handler refuses.
      log.info({ conn, reason: invalid }, 'port-forward stream refused');
      stream.reset();
      return;
    }
    const requestId = requestIdOf(stream);
    let pair = pairs.get(requestId);
    if (!pair) {
      const p: StreamPair = {
        requestId,
        timer: setTimeout(() => {
          const msg = `(conn=${conn}, request=${requestId}) timed out waiting for streams`;
          log.info({ conn, requestId }, msg);
          printError(p, msg);
          closePair(p);
          pairs.delete(requestId);
        }, options.streamCreationTimeoutMs),
      };
      pair = p;
      pairs.set(requestId, pair);
    }
    const type = stream.header('streamtype') as 'data' | 'error';
    acceptStream(stream);
    if (pair[type]) {
      const msg = `error processing stream for request ${requestId}: ${type} stream already assigned`;
      log.info({ conn, requestId }, msg);
      printError(pair, msg);
      stream.reset();
      return;
    }
    pair[type] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      void forward(pair.data, pair.error, podSandboxId, backend);
    }
  };
  session.on('stream', onStream);
  return new Promise((resolve) => {
    session.once('close', () => {
      session.off('stream', onStream);
      for (const pair of pairs.values()) {
        clearTimeout(pair.timer);
        closePair(pair);
      }
      pairs.clear();
      resolve();
    });
  });
}

async function forward(data: SpdyStream, error: SpdyStream, podSandboxId: string, backend: StreamingBackend): Promise<void> {
  const port = Number(data.header('port'));
  error.resume(); // the client never writes on it; let its end arrive
  try {
    const target = await backend.portForward({ podSandboxId, port });
    if (data.destroyed) {
      target.destroy();
      return;
    }
    await splice(data, target);
  } catch (err) {
    // kubelet: fmt.Errorf("error forwarding port %d to pod %s, uid %v: %v", port, pod, uid, err),
    // with an empty uid on the CRI path.
    const msg = `error forwarding port ${port} to pod ${podSandboxId}, uid : ${errorMessage(err)}`;
    log.info({ podSandboxId, port }, msg);
    if (!error.destroyed && !error.writableEnded) error.write(msg);
    if (!data.destroyed) data.end();
  }
  if (!error.destroyed) error.end();
}

/** Why kubelet's httpStreamReceived refuses the stream, or undefined. */
export function checkHeaders(stream: Pick<SpdyStream, 'header'>): string | undefined {
  const portString = stream.header('port');
  if (!portString) return '"port" header is required';
  const port = /^\d+$/.test(portString) ? Number(portString) : NaN;
  if (!(port <= 0xffff)) return `unable to parse "${portString}" as a port`;
  if (port < 1) return `port "${portString}" must be > 0`;
  const type = stream.header('streamtype');
  if (!type) return '"streamtype" header is required';
  if (type !== 'error' && type !== 'data') return `invalid stream type "${type}"`;
  return undefined;
}

/**
 * Old kubectl sends no requestID: its error stream comes first, then the data stream, so the data
 * stream's id minus 2 names the pair (kubelet's requestID()).
 */
function requestIdOf(stream: SpdyStream): string {
  const id = stream.header('requestid');
  if (id) return id;
  return String(stream.header('streamtype') === 'data' ? stream.id - 2 : stream.id);
}

function printError(pair: StreamPair, msg: string): void {
  if (pair.error && !pair.error.destroyed && !pair.error.writableEnded) pair.error.write(msg);
}

function closePair(pair: StreamPair): void {
  pair.error?.end();
  pair.data?.end();
}
