// Test support only (imported by *.test.ts): real node:http servers on 127.0.0.1 that play a
// registry, a mirror, a token server or a blob CDN, recording every request they receive.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

export interface TestServer {
  /** http://127.0.0.1:<port> */
  base: string;
  /** 127.0.0.1:<port>, the registry domain of this server. */
  host: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1 and a random port. */
export async function serve(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      Promise.resolve(handler(recorded, res)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends a JSON body. */
export function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers });
  res.end(bytes);
}

/** A distribution-spec error body. */
export function specError(res: http.ServerResponse, status: number, code: string, message: string, headers: http.OutgoingHttpHeaders = {}): void {
  json(res, status, { errors: [{ code, message }] }, headers);
}

/** The path of a recorded request, without its query. */
export function pathOf(r: RecordedRequest): string {
  return r.url.split('?')[0] ?? '';
}

export interface FakeImage {
  /** Repository path, e.g. "library/app". */
  repo: string;
  /** Manifests by tag and by digest. */
  manifests: Map<string, { bytes: Buffer; mediaType: string; digest: string }>;
  /** Blobs by digest. */
  blobs: Map<string, Buffer>;
}

/**
 * A handler that serves `image` the way distribution's registry does: manifests with
 * Content-Type and Docker-Content-Digest, blobs honouring `Range: bytes=N-`, spec error bodies.
 * `gate` runs first and may answer the request itself (auth checks, failures on cue).
 */
export function registryHandler(image: FakeImage, gate?: (req: RecordedRequest, res: http.ServerResponse) => boolean): Handler {
  return (req, res) => {
    if (gate?.(req, res)) return;
    const path = pathOf(req);
    const prefix = `/v2/${image.repo}/`;
    if (!path.startsWith(prefix)) return specError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
    const [kind, ref] = path.slice(prefix.length).split('/') as [string, string | undefined];
    if (kind === 'manifests' && ref !== undefined) {
      const m = image.manifests.get(ref);
      if (!m) return specError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'content-type': m.mediaType, 'docker-content-digest': m.digest, 'content-length': m.bytes.length });
      res.end(m.bytes);
      return;
    }
    if (kind === 'blobs' && ref !== undefined) {
      const b = image.blobs.get(ref);
      if (!b) return specError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        if (start >= b.length) {
          res.writeHead(416, { 'content-range': `bytes */${b.length}` });
          res.end();
          return;
        }
        res.writeHead(206, { 'content-range': `bytes ${start}-${b.length - 1}/${b.length}`, 'content-length': b.length - start });
        res.end(b.subarray(start));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length });
      res.end(b);
      return;
    }
    specError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
  };
}
