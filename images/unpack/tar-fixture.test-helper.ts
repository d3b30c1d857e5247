// Test helpers: layer tars built with tar-stream's own packer, and temp dirs with a sentinel around
// the unpack root so that tests can prove nothing was written outside it.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, type Header } from 'tar-stream';

export interface TarEntry {
  header: Partial<Header> & { name: string; pax?: Record<string, string> };
  body?: string | Buffer;
}

/** A tar from entries; `patch` replaces marker bytes afterwards (binary PAX values tar-stream cannot write). */
export async function makeTar(entries: TarEntry[], patch: [string, Buffer][] = []): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    if (e.body !== undefined) p.entry(e.header, e.body);
    else p.entry(e.header);
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  for (const [marker, bytes] of patch) {
    const at = tar.indexOf(marker);
    if (at < 0 || bytes.length !== Buffer.byteLength(marker)) throw new Error(`cannot patch ${marker}`);
    bytes.copy(tar, at);
  }
  return tar;
}

export interface Sandbox {
  base: string;
  root: string;
  outside: string;
  cleanup(): Promise<void>;
}

/** base/{root (empty), outside (holds `outside/secret`)}. */
export async function sandbox(): Promise<Sandbox> {
  const base = await mkdtemp(join(tmpdir(), 'skiff-unpack-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'secret');
  return { base, root, outside, cleanup: () => rm(base, { recursive: true, force: true }) };
}
