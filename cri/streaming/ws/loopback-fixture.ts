// Test support for this folder (not a test file itself): an HTTP server on 127.0.0.1 that hands
// upgrade requests to a handler and destroys every connection on close, a TCP echo target, and a
// message inbox for raw `ws` clients, and a port-forward handler that forwards to 127.0.0.1.
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { PORTFORWARD_PROTOCOLS } from './channel.js';
import { PortForwardSession, parsePortQuery } from './portforward.js';
import { acceptChannelWebSocket, rejectUpgrade } from './upgrade.js';

export interface Loopback {
  readonly port: number;
  url(path: string, scheme?: 'ws' | 'http'): string;
  close(): Promise<void>;
}

export async function listenUpgrades(onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown): Promise<Loopback> {
  const sockets = new Set<Duplex>();
  const server = createHttpServer((_req, res) => res.writeHead(404).end('not found\n'));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void onUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path, scheme = 'ws') => `${scheme}://127.0.0.1:${port}${path}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP server on 127.0.0.1 that writes back whatever it reads. */
export async function listenEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Message {
  readonly data: Buffer;
  readonly binary: boolean;
}

/** Every message and the close of one client WebSocket, in order, to await one by one. */
export class Inbox {
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly queue: Message[] = [];
  private readonly waiters: ((m: Message | undefined) => void)[] = [];
  private done = false;

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data: RawData, binary: boolean) => {
      const m = { data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), binary };
      const waiter = this.waiters.shift();
      if (waiter) waiter(m);
      else this.queue.push(m);
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.done = true;
        for (const w of this.waiters.splice(0)) w(undefined);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** The next message; rejects if the socket closes first or nothing comes within `ms`. */
  next(ms = 5000): Promise<Message> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.done) return Promise.reject(new Error('socket closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
      this.waiters.push((m) => {
        clearTimeout(timer);
        if (m) resolve(m);
        else reject(new Error('socket closed before the next message'));
      });
    });
  }

  /** Messages left unread. */
  get pending(): readonly Message[] {
    return this.queue;
  }

  /** Removes and returns the messages left unread. */
  take(): Message[] {
    return this.queue.splice(0);
  }
}

/** Resolves within `ms` or rejects, so a broken test fails instead of hanging. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Forwards each port of the URL to 127.0.0.1:port, as a runtime forwards into the sandbox netns. */
export async function servePortForward(req: IncomingMessage, socket: Duplex, head: Buffer, parameter = 'port'): Promise<PortForwardSession | undefined> {
  let ports: number[];
  try {
    ports = parsePortQuery(new URL(req.url ?? '/', 'http://x').searchParams, parameter);
  } catch (err) {
    rejectUpgrade(socket, 400, (err as Error).message);
    return undefined;
  }
  const accepted = await acceptChannelWebSocket(req, socket, head, PORTFORWARD_PROTOCOLS);
  if (!accepted) return undefined;
  const session = new PortForwardSession(accepted.ws, accepted.protocol, ports);
  for (const stream of session.streams) {
    const target = connect(stream.port, '127.0.0.1');
    target.on('error', (err) => {
      stream.reportError(`error forwarding port ${stream.port} to pod test, uid : ${err.message}`);
      stream.data.end();
    });
    stream.data.pipe(target);
    target.pipe(stream.data);
  }
  return session;
}
