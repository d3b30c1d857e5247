// `skiff port-forward POD-ID [LOCAL_PORT:]REMOTE_PORT...`: listens on 127.0.0.1 for each mapping
// (LOCAL_PORT omitted: the same number; empty or 0: any free port, as kubectl's `:REMOTE`) and
// forwards each accepted connection to REMOTE_PORT in the pod, until SIGINT or SIGTERM. Every
// connection asks PortForward for its own URL (they are single use) and gets its own WebSocket.
// Output is client-go's: "Forwarding from 127.0.0.1:L -> R", "Handling connection for L".
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { errorMessage } from '../../../common/errors.js';
import { forwardConnection } from '../../client/port-forward.js';
import { usageError } from '../args.js';
import { defineCommand, type CommandContext } from '../command.js';
import { TRANSPORT_OPTION, checkTransport } from '../remote-session.js';

export interface PortMapping {
  /** 0: any free port. */
  readonly local: number;
  readonly remote: number;
}

export const portForwardCommand = defineCommand({
  name: 'port-forward',
  summary: 'Forward local port to a pod',
  args: 'POD-ID [LOCAL_PORT:]REMOTE_PORT...',
  options: TRANSPORT_OPTION,
  async run(ctx, values, positionals) {
    const [id, ...specs] = positionals;
    if (id === undefined || id === '') throw usageError('ID cannot be empty');
    if (specs.length === 0) throw usageError('port-forward needs at least one [LOCAL_PORT:]REMOTE_PORT');
    checkTransport(values.transport);
    const mappings = specs.map(parsePortMapping);
    // As crictl does, ask once before listening: an unknown pod or a bad port fails now.
    await requestUrl(ctx, id, mappings.map((m) => m.remote));
    const interrupt = ctx.interrupt();
    const forwarder = new Forwarder(ctx, id);
    try {
      for (const mapping of mappings) {
        const port = await forwarder.listen(mapping);
        ctx.out(`Forwarding from 127.0.0.1:${port} -> ${mapping.remote}\n`);
      }
      await new Promise<void>((resolve) => {
        if (interrupt.aborted) resolve();
        else interrupt.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      await forwarder.close();
    }
  },
});

/** `[LOCAL_PORT:]REMOTE_PORT` as client-go's parsePorts reads it. */
export function parsePortMapping(spec: string): PortMapping {
  const parts = spec.split(':');
  if (parts.length > 2) throw usageError(`invalid port format "${spec}": want [LOCAL_PORT:]REMOTE_PORT`);
  const remoteText = parts.length === 1 ? parts[0] : parts[1];
  const localText = parts.length === 1 ? parts[0] : parts[0] || '0';
  const local = portNumber(localText);
  if (local === undefined) throw usageError(`error parsing local port '${localText}' in "${spec}": not a port number (0-65535)`);
  const remote = portNumber(remoteText);
  if (!remote) throw usageError(`error parsing remote port '${remoteText}' in "${spec}": not a port number (1-65535)`);
  return { local, remote };
}

function portNumber(text: string): number | undefined {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  return n <= 0xffff ? n : undefined;
}

async function requestUrl(ctx: CommandContext, podSandboxId: string, ports: number[]): Promise<string> {
  const request = { pod_sandbox_id: podSandboxId, port: ports };
  const { url } = await ctx.rpc('PortForward', request, () => ctx.client().portForward(request, ctx.callOptions()));
  return url;
}

/** The listeners, and the connections in progress so that close() can end them. */
class Forwarder {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Promise<void>>();

  constructor(
    private readonly ctx: CommandContext,
    private readonly podSandboxId: string,
  ) {}

  /** Listens for `mapping`; resolves with the local port. */
  async listen(mapping: PortMapping): Promise<number> {
    // allowHalfOpen: a client that stops writing still gets the pod's answer.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`unable to listen on 127.0.0.1:${mapping.local}: ${err.message}`, { cause: err })));
      server.listen(mapping.local, '127.0.0.1', () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', (err) => this.ctx.log.warn({ err: err.message }, 'port-forward listener error'));
    this.servers.push(server);
    const port = (server.address() as AddressInfo).port;
    server.on('connection', (socket: Socket) => this.accept(socket, port, mapping.remote));
    return port;
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.sessions);
  }

  private accept(socket: Socket, local: number, remote: number): void {
    this.ctx.out(`Handling connection for ${local}\n`);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // a reset by the local client ends the forward, nothing more
    const report = (message: string): void => this.ctx.err(`skiff: an error occurred forwarding ${local} -> ${remote}: ${message}\n`);
    const session = (async () => {
      try {
        const url = await requestUrl(this.ctx, this.podSandboxId, [remote]);
        if (socket.destroyed) return;
        await forwardConnection(url, remote, socket, { onError: report });
      } catch (err) {
        report(errorMessage(err));
        socket.destroy();
      }
    })();
    this.sessions.add(session);
    void session.finally(() => this.sessions.delete(session));
  }
}
