// Go's time.ParseDuration syntax ("300ms", "1.5h", "2h45m", "-30s"), as kubelet, containerd,
// CRI-O configs and crictl flags spell durations. Shared by skiffd's config and the skiff CLI.

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// Sticky: each part must start where the previous one ended. `ms` is tried before `m` and `s`.
const PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds (possibly fractional or negative); a bare number only for `0`. Throws on anything else. */
export function parseDuration(text: string): number {
  let rest = text.trim();
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new Error(`invalid duration "${text}"`);
  let total = 0;
  let pos = 0;
  while (pos < rest.length) {
    PART.lastIndex = pos;
    const m = PART.exec(rest);
    if (!m) throw new Error(`invalid duration "${text}" (use a number with a unit: ns, us, ms, s, m, h)`);
    total += Number.parseFloat(m[1]) * UNIT_MS[m[2]];
    pos = PART.lastIndex;
  }
  return sign * total;
}
