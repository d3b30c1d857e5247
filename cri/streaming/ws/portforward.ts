// Server side of port-forward over one WebSocket (kubelet cri/streaming/portforward/websocket.go):
// for the i-th requested port, channel 2i carries data both ways and channel 2i+1 carries error
// text to the client. The first message on each of them is the port as a little-endian uint16.
// The socket closes normally once the caller has ended (or destroyed) every port's data stream,
// as kubelet closes the connection when every forwarder has returned.
import { EventEmitter } from 'node:events';
import { finished, type Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { SkiffError } from '../../../common/errors.js';
import { logger } from '../../../common/log.js';
import type { ChannelProtocol } from './channel.js';
import { ChannelConn, CloseCode } from './conn.js';

const log = logger('stream-ws');

/** One forwarded port. */
export interface PortForwardStream {
  readonly port: number;
  /** Readable: bytes from the client for the port. Writable: bytes back to it, flow-controlled. */
  readonly data: Duplex;
  /**
   * Sends `message` on the port's error channel (kubelet's wording is
   * `error forwarding port <port> to pod <sandbox id>, uid : <cause>`). Call it before ending `data`.
   */
  reportError(message: string): void;
}

interface SessionEvents {
  close: [];
}

export class PortForwardSession extends EventEmitter<SessionEvents> {
  readonly protocol: ChannelProtocol;
  readonly streams: readonly PortForwardStream[];
  /** Resolves with the WebSocket close code once the socket is closed. */
  readonly closed: Promise<number>;
  private readonly conn: ChannelConn;

  constructor(ws: WebSocket, protocol: ChannelProtocol, ports: readonly number[]) {
    super();
    for (const port of ports) {
      if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new RangeError(`port-forward: port ${port} is out of range`);
    }
    this.protocol = protocol;
    this.conn = new ChannelConn(ws, protocol, { channelCount: ports.length * 2 });
    this.closed = this.conn.closed;
    const conn = this.conn;
    this.streams = ports.map((port, i) => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port);
      const data = conn.duplex(2 * i);
      conn.send(2 * i, prefix);
      conn.send(2 * i + 1, prefix);
      return { port, data, reportError: (message: string) => conn.send(2 * i + 1, Buffer.from(message)) };
    });
    let open = this.streams.length;
    for (const { data } of this.streams) {
      finished(data, { readable: false }, () => {
        if (--open === 0) void this.conn.close(CloseCode.NORMAL);
      });
    }
    if (open === 0) void this.conn.close(CloseCode.NORMAL);
    void this.closed.then((code) => {
      log.debug({ ports, code }, 'port-forward closed');
      this.emit('close');
    });
  }

  /** Closes the socket now; data not yet sent is lost. */
  async abort(code: number = CloseCode.GOING_AWAY, reason = ''): Promise<void> {
    await this.conn.close(code, reason);
  }
}

/**
 * The ports of a port-forward URL (kubelet portforward.NewV4Options): every `name` parameter, each
 * a comma-separated list of 1..65535. kubelet's own URLs say `port`; the API server's say `ports`.
 */
export function parsePortQuery(params: URLSearchParams, name = 'port'): number[] {
  const values = params.getAll(name);
  if (values.length === 0) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `port-forward: query parameter "${name}" is required`);
  const ports: number[] = [];
  for (const value of values) {
    if (value === '') throw new SkiffError('SKIFF_INVALID_ARGUMENT', `port-forward: query parameter "${name}" cannot be empty`);
    for (const p of value.split(',')) {
      const port = /^[0-9]{1,5}$/.test(p) ? Number(p) : NaN;
      if (!(port >= 1 && port <= 0xffff)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `port-forward: "${p}" in "${value}" is not a port (1-65535)`);
      ports.push(port);
    }
  }
  return ports;
}
