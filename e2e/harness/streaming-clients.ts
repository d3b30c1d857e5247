// Clients we did not write, pointed at skiff's streaming server the way kubelet's callers use it:
// @kubernetes/client-node (WebSocket) and spdy-transport (SPDY/3.1, as kubectl opens its streams).
// Plus what streaming e2e tests check with: checksums, the processes a marker names, fd counts.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { PassThrough } from 'node:stream';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
// Not re-exported by the package index; the package has no exports map, so the file is reachable.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import { readAll, spdyDial } from '../../cri/streaming/fake-backend.js';
import { stOpen, type StConnection, type StStream } from '../../cri/streaming/spdy/peer.js';
import { alive } from './pod-world.js';

export function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'skiff', server, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'skiff', cluster: 'skiff', user: 'nobody' }],
    currentContext: 'skiff',
  });
  return kc;
}

/**
 * A KubeConfig whose "API server" is a streaming URL: client-node appends its
 * /api/v1/namespaces/…/exec?… path to the server, and a trailing query parameter swallows it, so
 * the request reaches the URL the runtime handed out.
 */
export function kubeConfigFor(url: string, query = ''): KubeConfig {
  const u = new URL(url);
  return kubeConfig(`${u.origin}${u.pathname}?${query}ignored=`);
}

export type ClientNodeSocket = Awaited<ReturnType<WebSocketHandler['connect']>>;

/** Connects client-node's WebSocket handler to a streaming URL; collects what each channel says. */
export async function connectChannels(url: string): Promise<{ ws: ClientNodeSocket; text: (c: number) => string; closed: Promise<unknown> }> {
  const u = new URL(url);
  const channels = new Map<number, Buffer[]>();
  const ws = await new WebSocketHandler(kubeConfig(u.origin)).connect(`${u.pathname}${u.search}`, null, (channel: number, data: Buffer) => {
    channels.set(channel, [...(channels.get(channel) ?? []), Buffer.from(data)]);
    return true;
  });
  return { ws, text: (c) => Buffer.concat(channels.get(c) ?? []).toString(), closed: once(ws, 'close') };
}

export interface SpdyStdio {
  conn: StConnection;
  protocol: string;
  /** The streams opened, by streamtype, each with everything it will have said. */
  streams: Map<string, { stream: StStream; body: Promise<Buffer> }>;
}

/** Dials `url` over SPDY with spdy-transport and opens one stream per streamtype, error first as kubectl does. */
export async function spdyStdio(t: TestContext, url: string, types: string[], protocols = ['v4.channel.k8s.io']): Promise<SpdyStdio> {
  const { conn, protocol } = await spdyDial(t, url, protocols);
  const streams = new Map<string, { stream: StStream; body: Promise<Buffer> }>();
  for (const streamtype of types) {
    const stream = await stOpen(conn, { streamtype });
    const body = readAll(stream);
    body.catch(() => undefined);
    streams.set(streamtype, { stream, body });
  }
  return { conn, protocol, streams };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Pids of the live processes whose command line contains `marker` (zombies count as gone). */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(marker) && alive(Number(name))) pids.push(Number(name));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

/** How many file descriptors `pid` holds open. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Polls `check` every 50 ms until it holds or `ms` passes; returns whether it held. */
export async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Sends `payload` through client-node's PortForward on `url`  and collects what comes
 * back until as many bytes returned.
 */
export async function clientNodeForward(url: string, payload: Buffer, port = 8080): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  const output = new PassThrough();
  const done = new Promise<void>((resolve) => {
    output.on('data', (b: Buffer) => {
      parts.push(b);
      n += b.length;
      if (n >= payload.length) resolve();
    });
  });
  const input = new PassThrough();
  const ws = await new PortForward(kubeConfigFor(url, `port=${port}&`), true).portForward('ns', 'pod', [port], output, new PassThrough(), input);
  // Not input.end(): client-node closes the WebSocket as soon as its input ends.
  for (let off = 0; off < payload.length; off += 64 << 10) input.write(payload.subarray(off, off + (64 << 10)));
  await done;
  input.end();
  (ws as { close(): void }).close();
  return Buffer.concat(parts);
}
