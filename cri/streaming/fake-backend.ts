// Test support, not part of the library: a StreamingBackend whose "container" is a Node function,
// a streaming server on loopback around it, and a spdy-transport client that dials its URLs the
// way kubectl does.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { TestContext } from 'node:test';
import type { Duplex } from 'node:stream';
import type { AttachRequest, ExecIO, ExecRequest, StreamingBackend, TerminalSize } from './backend.js';
import { StreamingServer, type StreamingServerOptions } from './server.js';
import { transport, upgrade, type StConnection } from './spdy/peer.js';

export { upgrade };

/** What the fake saw, for assertions. */
export interface FakeEvents {
  exec: [ExecRequest];
  resize: [TerminalSize];
  /** The client went away during a command: the signal aborted and the output streams closed. */
  released: [{ aborted: boolean; stdoutDestroyed: boolean }];
}

/**
 * cmd ['echo']: stdout gets stdin verbatim, stderr gets "stderr: N bytes\n", exit code 3.
 * cmd ['exit', N]: exit code N at once. cmd ['fail']: the runtime fails. cmd ['hang']: runs until
 * the client leaves. attach behaves like echo without an exit code.
 */
export class FakeBackend extends EventEmitter<FakeEvents> implements StreamingBackend {
  execs = 0;
  forwards: number[] = [];

  async exec(req: ExecRequest, io: ExecIO): Promise<{ exitCode: number }> {
    this.execs++;
    this.emit('exec', req);
    io.resize.on('resize', (size) => this.emit('resize', size));
    const [what, arg] = req.cmd;
    if (what === 'exit') return { exitCode: Number(arg) };
    if (what === 'fail') throw new Error('runc exec: container is paused');
    if (what === 'hang') {
      await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve()));
      // Let the session's teardown reach the streams.
      await new Promise((resolve) => setImmediate(resolve));
      this.emit('released', { aborted: io.signal.aborted, stdoutDestroyed: io.stdout?.destroyed ?? false });
      return { exitCode: 137 };
    }
    await echo(io);
    return { exitCode: 3 };
  }

  async attach(_req: AttachRequest, io: ExecIO): Promise<void> {
    await echo(io);
  }

  async portForward(req: { podSandboxId: string; port: number }): Promise<Duplex> {
    this.forwards.push(req.port);
    const socket = net.connect(req.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return socket;
  }
}

async function echo(io: ExecIO): Promise<void> {
  let count = 0;
  if (io.stdin) {
    for await (const chunk of io.stdin as AsyncIterable<Buffer>) {
      count += chunk.length;
      if (io.stdout && !io.stdout.write(chunk)) await new Promise((resolve) => io.stdout!.once('drain', resolve));
    }
  }
  io.stderr?.write(`stderr: ${count} bytes\n`);
}

export async function startServer(t: TestContext, options: StreamingServerOptions = {}): Promise<{ server: StreamingServer; backend: FakeBackend }> {
  const backend = new FakeBackend();
  const server = new StreamingServer(backend, options);
  await server.start();
  t.after(() => server.stop());
  return { server, backend };
}

/** A spdy-transport client on `url`, upgraded with `protocols` offered like kubectl. */
export async function spdyDial(t: TestContext, url: string, protocols: string[]): Promise<{ conn: StConnection; socket: net.Socket; protocol: string }> {
  const { socket, response, rest } = await upgrade(url, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols });
  t.after(() => socket.destroy());
  if (!response.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${response}`);
  const protocol = /X-Stream-Protocol-Version: (\S+)/i.exec(response)?.[1] ?? '';
  socket.setNoDelay(true);
  const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false });
  conn.on('error', () => undefined);
  conn.start(3.1);
  if (rest.length > 0) socket.unshift(rest);
  socket.resume();
  return { conn, socket, protocol };
}

/**
 * Everything a readable yields until it ends. Not for await: that destroys the stream at the end,
 * which makes spdy-transport reset it and drop what it had buffered.
 */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.once('end', () => resolve(Buffer.concat(parts)));
    stream.once('error', reject);
  });
}
