// Test and bench support: a strict reader of the Prometheus text exposition format (version 0.0.4)
// — `# HELP`/`# TYPE` lines, then `name{label="value",…} number` samples — that throws on any line
// it cannot read, so a test that parses a scrape also checks that it is well formed.

export interface ExposedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: ExposedSample[];
  /** Family name → its # TYPE. */
  types: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"/;

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(s: string, line: string): number {
  // Prometheus reads values with Go's ParseFloat, which takes any case (prom-client writes "Nan").
  const lower = s.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  const v = Number(s);
  if (s === '' || Number.isNaN(v)) throw new Error(`exposition: bad value "${s}" in: ${line}`);
  return v;
}

export function parseExposition(text: string): Exposition {
  const samples: ExposedSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`exposition: bad comment: ${line}`);
        continue;
      }
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3] ?? '')) throw new Error(`exposition: bad type: ${line}`);
        if (types.has(m[2])) throw new Error(`exposition: family ${m[2]} typed twice`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`exposition: no metric name: ${line}`);
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      while (!rest.startsWith('}')) {
        const m = LABEL.exec(rest);
        if (!m) throw new Error(`exposition: bad label at "${rest}" in: ${line}`);
        if (m[1] in labels) throw new Error(`exposition: label ${m[1]} twice in: ${line}`);
        labels[m[1]] = unescapeLabel(m[2]);
        rest = rest.slice(m[0].length);
        if (rest.startsWith(',')) rest = rest.slice(1);
        else if (!rest.startsWith('}')) throw new Error(`exposition: expected , or } in: ${line}`);
      }
      rest = rest.slice(1);
    }
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`exposition: bad sample: ${line}`);
    samples.push({ name, labels, value: parseValue(parts[1], line) });
  }
  return { samples, types };
}

/** The samples named `name` whose labels include every pair of `match`. */
export function series(e: Exposition, name: string, match: Record<string, string> = {}): ExposedSample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}
