// Go-style durations ("300ms", "30s", "5m", "1h30m"), as kubelet, containerd and CRI-O configs
// spell them.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration string; "0" is zero. Throws on anything else. */
export function parseDuration(s: string): number {
  const text = s.trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`invalid duration "${s}" (use e.g. 500ms, 30s, 5m, 1h)`);
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = re.lastIndex;
  }
  if (pos === 0) throw new Error(`invalid duration "${s}" (use e.g. 500ms, 30s, 5m, 1h)`);
  return Math.round(total);
}
