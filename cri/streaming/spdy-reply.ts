// How this server accepts a client's SPDY stream. kubelet replies with no headers, which moby/spdystream
// (kubectl, the API server) accepts; SPDY/3 itself (draft 3.1, section 2.6.2 SYN_REPLY) and
// spdy-transport require :status and :version, which spdystream ignores. So reply with both.
import type { SpdyStream } from './spdy/stream.js';

const REPLY = { ':status': '200', ':version': 'HTTP/1.1' } as const;

export function acceptStream(stream: SpdyStream): void {
  stream.respond(REPLY);
}
