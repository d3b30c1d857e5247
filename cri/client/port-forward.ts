// The client side of port-forward over WebSocket (kubelet cri/streaming/portforward/websocket.go,
// v4.channel.k8s.io): one connection carries one local TCP connection to one port, named by the
// URL's `port` parameter. Channel 0 carries data both ways, channel 1 error text from the server,
// and the server starts each of them with the port as 2 little-endian bytes.
//
// The channel protocol has no half-close (v5's close signal is not offered for port-forward), so
// the end of the local side's writing closes the connection, as client-node does: the pod side
// then reads EOF, and what the pod had already sent still arrives before the close completes.
// Keeping the connection open for a later answer instead would hold every connection whose client
// closed for good (curl, most clients: a FIN says no more than shutdown(SHUT_WR) does) until the
// pod side gives up. kubectl's SPDY streams can pass on a half-close; this protocol cannot.
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { logger } from '../../common/log.js';
import { V4_CHANNEL, decodeFrame, encodeFrame, type ChannelProtocol } from '../streaming/ws/channel.js';
import { dialChannels, webSocketUrl, type ChannelSocket, type DialOptions } from './stream-dial.js';

const log = logger('stream-client');

export const CLIENT_PORTFORWARD_PROTOCOLS: readonly ChannelProtocol[] = [V4_CHANNEL];

const DATA = 0;
const ERROR = 1;
const MAX_FRAME_PAYLOAD = 32 << 10;
const SEND_HIGH_WATER = 256 << 10;

export interface ForwardOptions extends DialOptions {
  /** Each message the server sends on the port's error channel (kubelet's text, as is). */
  readonly onError?: (message: string) => void;
}

/**
 * Dials a PortForward URL for `port` and relays `local` through it. Resolves once the connection
 * and the local socket are both closed; rejects when the connection cannot be made (then `local`
 * is left to the caller).
 */
export async function forwardConnection(url: string, port: number, local: Duplex, options: ForwardOptions = {}): Promise<void> {
  const target = webSocketUrl(url);
  target.searchParams.set('port', String(port));
  const socket = await dialChannels(target, CLIENT_PORTFORWARD_PROTOCOLS, options);
  await relay(socket, port, local, options.onError ?? (() => undefined));
}

function relay(socket: ChannelSocket, port: number, local: Duplex, onError: (message: string) => void): Promise<void> {
  const { ws, protocol } = socket;
  return new Promise((resolve) => {
    const prefixLeft = [2, 2];
    const prefix = [Buffer.alloc(0), Buffer.alloc(0)];
    let wsClosed = false;
    let localClosed = false;
    let blocked = false;
    const settle = (): void => {
      if (wsClosed && localClosed) resolve();
    };
    const protocolError = (reason: string): void => {
      log.debug({ port, reason }, 'port-forward protocol error');
      onError(`port-forward protocol error: ${reason}`);
      ws.terminate();
    };

    const onMessage = (data: Buffer): void => {
      const frame = decodeFrame(protocol, data, 2);
      if (frame.kind === 'invalid') return protocolError(frame.reason);
      if (frame.kind !== 'data') return;
      const channel = frame.channel;
      let payload = frame.payload;
      if (prefixLeft[channel] > 0) {
        const take = Math.min(prefixLeft[channel], payload.length);
        prefix[channel] = Buffer.concat([prefix[channel], payload.subarray(0, take)]);
        payload = payload.subarray(take);
        prefixLeft[channel] -= take;
        if (prefixLeft[channel] === 0 && prefix[channel].readUInt16LE() !== port) {
          return protocolError(`channel ${channel} is for port ${prefix[channel].readUInt16LE()}, not ${port}`);
        }
      }
      if (payload.length === 0) return;
      if (channel === ERROR) return onError(payload.toString('utf8'));
      if (local.destroyed || local.writableEnded) return;
      // While the local socket is backed up the connection is not read.
      if (!local.write(payload) && !blocked) {
        blocked = true;
        ws.pause();
        local.once('drain', () => {
          blocked = false;
          ws.resume();
        });
      }
    };
    const onClose = (code: number): void => {
      log.debug({ port, code }, 'port-forward connection closed');
      wsClosed = true;
      // The pod side is done: what it sent goes out, then the local socket closes.
      if (!local.destroyed) {
        local.once('finish', () => local.destroy());
        local.end();
      }
      settle();
    };
    ws.on('error', (err) => log.debug({ port, err: err.message }, 'port-forward connection error'));
    socket.listen({ message: onMessage, close: onClose });

    const resume = (): void => {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount <= SEND_HIGH_WATER) local.resume();
    };
    local.on('data', (chunk: Buffer) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      for (let offset = 0; offset < chunk.length; offset += MAX_FRAME_PAYLOAD) {
        const last = offset + MAX_FRAME_PAYLOAD >= chunk.length;
        ws.send(encodeFrame(protocol, DATA, chunk.subarray(offset, offset + MAX_FRAME_PAYLOAD)), { binary: !protocol.base64 }, last ? resume : undefined);
      }
      if (ws.bufferedAmount > SEND_HIGH_WATER) local.pause();
    });
    local.on('end', () => {
      // ws sends the close frame after the data already queued.
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    });
    local.on('error', (err) => log.debug({ port, err: err.message }, 'local connection error'));
    local.once('close', () => {
      localClosed = true;
      // Nothing more can be delivered: read on (dropping) so that the close handshake completes.
      if (blocked) ws.resume();
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      settle();
    });
    // A listener made with pauseOnConnect hands the socket over paused.
    local.resume();
  });
}
