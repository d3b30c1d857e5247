// Failpoints (containerd's idea for its crash tests): named places in multi-step operations where a
// test can make skiffd stop and wait, to SIGKILL it exactly there. Off unless SKIFF_FAILPOINTS
// names them (comma-separated); read once at start. A skiffd in production never sets it.
import { logger } from './log.js';

const log = logger('failpoint');

export type FailpointName = 'sandbox-before-ready' | 'container-after-start';

let armed: Set<string> | undefined;

function armedSet(): Set<string> {
  armed ??= new Set((process.env.SKIFF_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  return armed;
}

/** Waits for ever (until the process is killed) when `name` is armed; returns at once otherwise. */
export async function failpoint(name: FailpointName): Promise<void> {
  if (!armedSet().has(name)) return;
  log.warn({ failpoint: name }, 'failpoint reached: waiting to be killed');
  await new Promise<never>(() => undefined); // skiffd's server keeps the process alive meanwhile
}

/** For unit tests: re-read SKIFF_FAILPOINTS. */
export function resetFailpoints(): void {
  armed = undefined;
}
