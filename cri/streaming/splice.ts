// Joins a client stream to a backend connection in both directions with backpressure (pipe).
// An end in one direction half-closes the other side; a premature close or error on either side
// destroys both, so a client that vanishes releases the backend's connection and vice versa.
import { finished, type Duplex } from 'node:stream';

/** Resolves once both directions have ended cleanly; rejects with the first failure. */
export function splice(client: Duplex, target: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let clean = 0;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      target.destroy();
      reject(err);
    };
    const onFinished = (err?: Error | null): void => {
      if (err) return fail(err);
      if (++clean === 2 && !settled) {
        settled = true;
        resolve();
      }
    };
    finished(client, onFinished);
    finished(target, onFinished);
    client.pipe(target);
    target.pipe(client);
  });
}
