// A real grpc-js server on a temporary unix socket that answers CRI rpcs with whatever handlers a
// test gives it: for testing the client and the CLI without skiffd. Rpcs without a handler answer
// UNIMPLEMENTED, as a runtime that lacks them would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../proto/load.js';
import type { RuntimeServiceHandlers } from '../gen/runtime/v1/RuntimeService.js';
import type { ImageServiceHandlers } from '../gen/runtime/v1/ImageService.js';

export interface FakeCriHandlers {
  runtime?: Partial<RuntimeServiceHandlers>;
  image?: Partial<ImageServiceHandlers>;
}

export interface FakeCri {
  /** `unix:///tmp/.../cri.sock` */
  endpoint: string;
  socketPath: string;
  close(): Promise<void>;
}

export async function startFakeCri(handlers: FakeCriHandlers): Promise<FakeCri> {
  const cri = loadCri();
  const dir = await mkdtemp(join(tmpdir(), 'skiff-fake-cri-'));
  const socketPath = join(dir, 'cri.sock');
  const endpoint = `unix://${socketPath}`;
  const server = new grpc.Server();
  server.addService(cri.RuntimeService.service, (handlers.runtime ?? {}) as grpc.UntypedServiceImplementation);
  server.addService(cri.ImageService.service, (handlers.image ?? {}) as grpc.UntypedServiceImplementation);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(endpoint, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  return {
    endpoint,
    socketPath,
    async close() {
      // forceShutdown: a test that failed half-way may leave a stream open, and close must not hang.
      server.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
