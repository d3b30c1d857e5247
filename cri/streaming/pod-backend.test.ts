import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { PodService } from '../../pod/service.js';
import { TerminalResizes, type ExecIO } from './backend.js';
import { PodStreamingBackend } from './pod-backend.js';

/** A monitor exec session that runs until killed, and a PodService that hands it out. */
function fakePods(): { pods: PodService; killed: () => boolean; resized: { width: number; height: number }[] } {
  let kill: () => void = () => undefined;
  let wasKilled = false;
  const resized: { width: number; height: number }[] = [];
  const stdout = new PassThrough();
  const exited = new Promise<{ exitCode: number }>((resolve) => {
    kill = () => {
      wasKilled = true;
      stdout.end();
      resolve({ exitCode: 137 });
    };
  });
  const session = {
    stdout,
    stderr: null,
    writeStdin: () => Promise.resolve(),
    closeStdin: () => Promise.resolve(),
    resize: (width: number, height: number) => void resized.push({ width, height }),
    kill: () => kill(),
    exited,
  };
  const pods = { containers: { execSession: () => new Promise((r) => setTimeout(() => r(session), 20)) } } as unknown as PodService;
  return { pods, killed: () => wasKilled, resized };
}

function io(signal: AbortSignal, resize = new TerminalResizes()): ExecIO {
  return { stdout: new PassThrough().resume(), tty: true, resize, signal };
}

test('an exec whose client left while the session was being opened is killed at once', { timeout: 5000 }, async () => {
  const { pods, killed } = fakePods();
  const abort = new AbortController();
  const running = new PodStreamingBackend(pods).exec({ containerId: 'c', cmd: ['sleep', '1000'], stdin: false, stdout: true, stderr: false, tty: true }, io(abort.signal));
  abort.abort(); // before execSession resolves
  assert.deepEqual(await running, { exitCode: 137 });
  assert.ok(killed());
});

test('an exec gets the terminal size the client sent before its session existed', async () => {
  const { pods, resized } = fakePods();
  const abort = new AbortController();
  const resize = new TerminalResizes();
  resize.push({ width: 99, height: 33 });
  const running = new PodStreamingBackend(pods).exec({ containerId: 'c', cmd: ['sh'], stdin: false, stdout: true, stderr: false, tty: true }, io(abort.signal, resize));
  await new Promise((r) => setTimeout(r, 60));
  abort.abort();
  await running;
  assert.deepEqual(resized, [{ width: 99, height: 33 }]);
});
