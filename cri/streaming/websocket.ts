// exec, attach and port-forward over WebSocket: the channel sessions of ws/ joined to the backend.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { TerminalResizes, type ExecIO, type StreamingBackend } from './backend.js';
import type { CachedRequest } from './request-cache.js';
import { splice } from './splice.js';
import { PORTFORWARD_PROTOCOLS, REMOTECOMMAND_PROTOCOLS } from './ws/channel.js';
import { PortForwardSession, parsePortQuery } from './ws/portforward.js';
import { RemoteCommandSession, type ExitStatus } from './ws/remotecommand.js';
import { acceptChannelWebSocket, rejectUpgrade } from './ws/upgrade.js';

const log = logger('streaming');

/** Serves one exec or attach; resolves when the WebSocket is closed. */
export async function serveRemoteCommandWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  request: Extract<CachedRequest, { kind: 'exec' | 'attach' }>,
  backend: StreamingBackend,
): Promise<void> {
  const accepted = await acceptChannelWebSocket(req, socket, head, REMOTECOMMAND_PROTOCOLS);
  if (!accepted) return;
  const r = request.req;
  const session = new RemoteCommandSession(accepted.ws, accepted.protocol, { ...r, operation: request.kind });
  const abort = new AbortController();
  session.once('close', () => abort.abort(new Error('client connection closed')));
  const resize = new TerminalResizes();
  session.on('resize', (size) => resize.push(size));
  const io: ExecIO = { stdin: session.stdin, stdout: session.stdout, stderr: session.stderr, tty: r.tty, resize, signal: abort.signal };
  let status: ExitStatus;
  try {
    if (request.kind === 'exec') status = { exitCode: (await backend.exec(request.req, io)).exitCode };
    else {
      await backend.attach(request.req, io);
      status = {};
    }
  } catch (err) {
    log.debug({ err: errorMessage(err), containerId: r.containerId }, `${request.kind} failed`);
    status = { error: errorMessage(err) };
  }
  await session.finish(status);
}

/** Serves port-forward for the ports of the URL's `port` parameters; resolves when closed. */
export async function servePortForwardWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL,
  podSandboxId: string,
  backend: StreamingBackend,
): Promise<void> {
  let ports: number[];
  try {
    ports = parsePortQuery(url.searchParams, 'port');
  } catch (err) {
    rejectUpgrade(socket, 400, errorMessage(err));
    return;
  }
  const accepted = await acceptChannelWebSocket(req, socket, head, PORTFORWARD_PROTOCOLS);
  if (!accepted) return;
  const session = new PortForwardSession(accepted.ws, accepted.protocol, ports);
  await Promise.all(
    session.streams.map(async (stream) => {
      try {
        const target = await backend.portForward({ podSandboxId, port: stream.port });
        if (stream.data.destroyed) {
          target.destroy();
          return;
        }
        await splice(stream.data, target);
      } catch (err) {
        const msg = `error forwarding port ${stream.port} to pod ${podSandboxId}, uid : ${errorMessage(err)}`;
        log.info({ podSandboxId, port: stream.port }, msg);
        stream.reportError(msg);
        if (!stream.data.destroyed) stream.data.end();
      }
    }),
  );
  await session.closed;
}
