// The streaming server's backend on skiff's pods: exec and attach go through the container's
// monitor (its exec and attach sessions), port-forward dials the port inside the pod's network
// namespace (the node's loopback for a hostNetwork pod).
import { connect, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { SkiffError } from '../../common/errors.js';
import { dialPodPort } from '../../network/pod-dial.js';
import type { PodService } from '../../pod/service.js';
import type { AttachRequest, ExecIO, ExecRequest, StreamingBackend } from './backend.js';

interface Session {
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  writeStdin(data: Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  resize(width: number, height: number): void;
}

/** Wires a monitor session to the client's streams: stdin in at the session's pace, output out. */
function relay(session: Session, io: ExecIO, stop: () => void): Promise<void> {
  io.resize.on('resize', (s) => session.resize(s.width, s.height));
  // The client may have gone while the session was being opened: its abort has fired already.
  if (io.signal.aborted) stop();
  else io.signal.addEventListener('abort', stop, { once: true });
  if (io.stdin) {
    const stdin = io.stdin;
    void (async () => {
      try {
        for await (const chunk of stdin) await session.writeStdin(chunk as Buffer);
        await session.closeStdin();
      } catch {
        /* the session ended first */
      }
    })();
  }
  const pipes = ([
    [session.stdout, io.stdout],
    [session.stderr, io.stderr],
  ] as const).map(
    ([from, to]) =>
      new Promise<void>((resolve) => {
        if (!from) return resolve();
        if (!to) {
          from.resume(); // asked for by the monitor, not by the client: drained, not kept
          from.once('end', resolve).once('close', resolve);
          return;
        }
        from.pipe(to, { end: false });
        from.once('end', resolve).once('close', resolve);
      }),
  );
  return Promise.all(pipes).then(() => undefined);
}

export class PodStreamingBackend implements StreamingBackend {
  constructor(private readonly pods: PodService) {}

  async exec(req: ExecRequest, io: ExecIO): Promise<{ exitCode: number }> {
    const session = await this.pods.containers.execSession(req.containerId, [...req.cmd], { stdin: req.stdin, tty: req.tty });
    await relay(session, io, () => session.kill());
    const exit = await session.exited;
    if (!exit) throw new SkiffError('SKIFF_RUNTIME_FAILED', `exec in container ${req.containerId} ended without an exit status`);
    return { exitCode: exit.exitCode };
  }

  async attach(req: AttachRequest, io: ExecIO): Promise<void> {
    const session = await this.pods.containers.attachSession(req.containerId, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
    await relay(session, io, () => session.detach());
    await session.exited;
  }

  async portForward(req: { podSandboxId: string; port: number }): Promise<Duplex> {
    const sandbox = this.pods.sandboxes.find(req.podSandboxId);
    if (!sandbox) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${req.podSandboxId}" not found`);
    if (sandbox.netnsPath) return dialPodPort(sandbox.netnsPath, req.port);
    return new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: req.port });
      s.once('connect', () => resolve(s)).once('error', (e) => reject(new SkiffError('SKIFF_NETWORK_FAILED', `port-forward to port ${req.port} on the node: ${e.message}`, { cause: e })));
    });
  }
}
