// A read/write lock per key (here: per sandbox). Container creation and start take it shared —
// several at once are fine — while stopping or removing the pod takes it exclusive, so a
// container is never being created in a pod that is being torn down under it. Writers are not
// starved: once one waits, new readers queue behind it.
interface State {
  readers: number;
  writer: boolean;
  queue: { write: boolean; go: () => void }[];
}

export class KeyedRWLock {
  private readonly states = new Map<string, State>();

  read<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.run(key, false, fn);
  }

  write<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.run(key, true, fn);
  }

  private async run<T>(key: string, write: boolean, fn: () => Promise<T>): Promise<T> {
    let s = this.states.get(key);
    if (!s) this.states.set(key, (s = { readers: 0, writer: false, queue: [] }));
    const state = s;
    const free = write ? !state.writer && state.readers === 0 && state.queue.length === 0 : !state.writer && state.queue.length === 0;
    if (free) this.enter(state, write);
    else await new Promise<void>((go) => state.queue.push({ write, go: () => (this.enter(state, write), go()) }));
    try {
      return await fn();
    } finally {
      if (write) state.writer = false;
      else state.readers--;
      this.next(key, state);
    }
  }

  private enter(s: State, write: boolean): void {
    if (write) s.writer = true;
    else s.readers++;
  }

  private next(key: string, s: State): void {
    while (s.queue.length) {
      const head = s.queue[0];
      if (head.write) {
        if (s.readers === 0 && !s.writer) {
          s.queue.shift();
          head.go();
        }
        return;
      }
      if (s.writer) return;
      s.queue.shift();
      head.go();
    }
    if (!s.writer && s.readers === 0) this.states.delete(key);
  }
}
