// Test support, not part of the library: typed handles on spdy-transport (the independent SPDY
// implementation the tests talk to) and on a raw frame-level client that behaves like
// moby/spdystream (no SETTINGS, no WINDOW_UPDATE) or breaks the protocol on purpose.
import { createRequire } from 'node:module';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FrameReader, encodeFrame, type Frame } from './frames.js';
import { HeaderCodec } from './header-codec.js';
import { acceptSpdyUpgrade, type SpdyUpgradeOptions } from './upgrade.js';
import type { SpdySession } from './session.js';

const require = createRequire(import.meta.url);

export interface StStream extends Duplex {
  id: number;
  abort(code?: string, cb?: () => void): void;
}

export interface StConnection extends EventEmitter {
  start(version: number): void;
  request(
    options: { method: string; path: string; host: string; headers: Record<string, string>; priority?: object },
    cb: (err: Error | null, stream: StStream) => void,
  ): StStream;
  ping(cb: (err: Error | null) => void): void;
  end(cb?: () => void): void;
}

interface StZlibPair {
  compress: import('node:zlib').Deflate;
  decompress: import('node:zlib').Inflate;
}

interface SpdyTransport {
  connection: { create(socket: Duplex, options: { protocol: string; isServer: boolean; windowSize?: number }): StConnection };
  protocol: {
    spdy: {
      dictionary: Record<string, Buffer>;
      compressionPool: { create(compression: boolean): { get(version: number): StZlibPair } };
      framer: { create(options: { window: unknown }): StFramer };
    };
  };
  Window: new (options: object) => unknown;
}

export interface StFramer extends EventEmitter {
  setVersion(v: number): void;
  setCompression(pair: StZlibPair): void;
  requestFrame(frame: object, cb: (err: Error | null) => void): void;
}

export const transport = require('spdy-transport') as SpdyTransport;

/** spdy-transport's framer, for byte-level comparisons. */
export function stFramer(): { framer: StFramer; bytes: () => Buffer } {
  const window = new transport.Window({
    id: 0,
    isServer: false,
    recv: { size: 65536, max: 0x7fffffff },
    send: { size: 65536, max: 0x7fffffff },
  });
  const framer = transport.protocol.spdy.framer.create({ window });
  framer.setVersion(3.1);
  framer.setCompression(transport.protocol.spdy.compressionPool.create(true).get(3.1));
  const chunks: Buffer[] = [];
  framer.on('data', (c: Buffer) => chunks.push(c));
  return { framer, bytes: () => Buffer.concat(chunks) };
}

/** An HTTP server on 127.0.0.1 that upgrades to SPDY and hands each session to `onSession`. */
export async function spdyServer(
  options: SpdyUpgradeOptions,
  onSession: (session: SpdySession, protocol: string) => void,
): Promise<{ port: number; close: () => Promise<void>; sessions: SpdySession[] }> {
  const sessions: SpdySession[] = [];
  const sockets = new Set<Duplex>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const r = acceptSpdyUpgrade(req, socket, head, options);
    if (r.ok) {
      sessions.push(r.session);
      onSession(r.session, r.protocol);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    sessions,
    close: async () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Sends an upgrade request to `url`; resolves with the socket, paused after the response head, what
 * had arrived by then as text (`response`: the head, perhaps some body) and the bytes after the head.
 */
export async function upgrade(url: string, headers: Record<string, string | string[]>): Promise<{ socket: net.Socket; response: string; rest: Buffer }> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const lines = Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}\r\n`));
  socket.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${lines.join('')}\r\n`);
  let buf = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve({ socket, response: buf.toString('latin1'), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => resolve({ socket, response: buf.toString('latin1'), rest: Buffer.alloc(0) }));
  });
}

/** The SPDY/3.1 upgrade of a local test server on `port`, offering `protocols` as kubectl does. */
export function upgradeSocket(port: number, protocols = ['v4.channel.k8s.io']): Promise<{ socket: net.Socket; response: string; rest: Buffer }> {
  return upgrade(`http://127.0.0.1:${port}/exec`, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols });
}

/** A spdy-transport client session over an upgraded socket. */
export async function stClient(port: number, protocols?: string[]): Promise<{ conn: StConnection; socket: net.Socket }> {
  const { socket, response, rest } = await upgradeSocket(port, protocols);
  if (!response.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${response}`);
  socket.setNoDelay(true);
  const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false });
  conn.start(3.1);
  if (rest.length > 0) socket.unshift(rest);
  socket.resume();
  return { conn, socket };
}

/** Opens a stream from a spdy-transport client with a streamtype header. */
export function stOpen(conn: StConnection, headers: Record<string, string>): Promise<StStream> {
  return new Promise((resolve, reject) => {
    conn.request({ method: 'POST', path: '/', host: '127.0.0.1', headers }, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
}

/**
 * A frame-level client: writes frames it builds itself and collects what the server sends. Like
 * spdystream it sends neither SETTINGS nor WINDOW_UPDATE unless told to.
 */
export class RawClient {
  readonly frames: Frame[] = [];
  private readonly reader = new FrameReader({ maxControlFrame: 1 << 24, maxDataFrame: 1 << 24 });
  private readonly codec = new HeaderCodec({ maxHeaderBlockSize: 1 << 20 });
  private waiters: (() => void)[] = [];
  closed = false;
  dataBytes = 0;

  constructor(readonly socket: net.Socket, rest: Buffer) {
    socket.on('data', (c: Buffer) => this.onBytes(c));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
    if (rest.length > 0) this.onBytes(rest);
    socket.resume();
  }

  static async connect(port: number): Promise<RawClient> {
    const { socket, rest } = await upgradeSocket(port);
    return new RawClient(socket, rest);
  }

  private onBytes(c: Buffer): void {
    this.reader.push(c);
    for (let f = this.reader.next(); f; f = this.reader.next()) {
      if (f.type === 'DATA') {
        this.dataBytes += f.data.length;
        this.frames.push({ ...f, data: Buffer.alloc(0) }); // keep the count, not the bytes
      } else this.frames.push(f);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `pred` holds, checked on every arrival. */
  async until(pred: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  send(frame: Frame): boolean {
    return this.socket.write(encodeFrame(frame));
  }

  synStream(streamId: number, headers: Record<string, string>, flags = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.codec.compress(Object.entries(headers).map(([k, v]) => [k, [v]] as const), (err, block) => {
        if (err) return reject(err);
        this.send({ type: 'SYN_STREAM', streamId, associatedStreamId: 0, priority: 0, slot: 0, flags, headerBlock: block! });
        resolve();
      });
    });
  }

  close(): void {
    this.codec.close();
    this.socket.destroy();
  }
}
