// Name reservation with idempotent retries. kubelet retries RunPodSandbox and CreateContainer
// after its own deadline while the first call may still be running; containerd and CRI-O answer
// such a retry with a lasting "name is reserved" error, the failure users hit most. Here a retry
// carrying the same request joins the call in flight or gets the finished call's id; only the
// same name with a *different* request is ALREADY_EXISTS. A failed call frees the name.
import { createHash } from 'node:crypto';
import { SkiffError } from '../../common/errors.js';

interface Entry {
  fingerprint: string;
  id?: string;
  pending?: Promise<string>;
}

export class NameRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly kind: string) {}

  /**
   * Runs `create` for `name` unless a call with the same fingerprint holds it already, in which
   * case that call's id (or its outcome, when still running) is the answer.
   */
  async reserve(name: string, fingerprint: string, create: () => Promise<string>): Promise<{ id: string; created: boolean }> {
    const held = this.entries.get(name);
    if (held) {
      if (held.fingerprint !== fingerprint) {
        const who = held.id ? ` by ${this.kind} ${held.id}` : ' by a call still in progress';
        throw new SkiffError('SKIFF_ALREADY_EXISTS', `${this.kind} name "${name}" is already in use${who} with a different configuration`);
      }
      if (held.pending) return { id: await held.pending, created: false };
      return { id: held.id!, created: false };
    }
    const entry: Entry = { fingerprint };
    const pending = create();
    entry.pending = pending;
    this.entries.set(name, entry);
    try {
      const id = await pending;
      this.entries.set(name, { fingerprint, id });
      return { id, created: true };
    } catch (err) {
      if (this.entries.get(name) === entry) this.entries.delete(name);
      throw err;
    }
  }

  /** Re-registers a name found on disk at startup. */
  restore(name: string, id: string, fingerprint: string): void {
    this.entries.set(name, { fingerprint, id });
  }

  /** Frees the name if `id` holds it. */
  release(name: string, id: string): void {
    if (this.entries.get(name)?.id === id) this.entries.delete(name);
  }

  holder(name: string): string | undefined {
    return this.entries.get(name)?.id;
  }
}

/** A stable hash of a request: object keys sorted, so field order never matters. */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(stableJSON(value)).digest('hex');
}

function stableJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJSON).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJSON(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
