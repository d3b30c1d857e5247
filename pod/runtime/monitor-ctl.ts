// Talking to a running monitor over its control socket: one JSON request line, one JSON reply
// line (native/monitor-protocol.h). skiffd may come and go; the monitor does not care.
import { connect } from 'node:net';
import { SkiffError } from '../../common/errors.js';

export function monitorRequest(socket: string, req: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new SkiffError('SKIFF_RUNTIME_FAILED', `monitor at ${socket} did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => s.write(JSON.stringify(req) + '\n'));
    s.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch {
        reject(new SkiffError('SKIFF_RUNTIME_FAILED', `monitor at ${socket} sent a malformed reply`));
      }
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new SkiffError('SKIFF_RUNTIME_FAILED', `monitor at ${socket}: ${e.message}`, { cause: e }));
    });
  });
}

/** ReopenContainerLog: the monitor closes and reopens the container's log file. */
export async function reopenLog(socket: string): Promise<void> {
  const reply = await monitorRequest(socket, { op: 'reopen-log' });
  if (reply.error !== undefined) {
    const why = typeof reply.error === 'string' ? reply.error : JSON.stringify(reply.error);
    throw new SkiffError('SKIFF_RUNTIME_FAILED', `reopen log: ${why}`);
  }
}
