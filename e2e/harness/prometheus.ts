// A real Prometheus for tests: Debian's `prometheus` on a free loopback port, scraping the given
// targets every second, with its TSDB and log in a temp dir; queried over its HTTP API. And
// `promtool check metrics`, Prometheus's own parser and linter of the text format.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnLogged, stopChild, tail, waitUntil } from './process.js';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';
export const PROMTOOL_BIN = '/usr/bin/promtool';

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

export interface TestPrometheus {
  url: string;
  dir: string;
  child: ChildProcess;
  /** Instant PromQL query (/api/v1/query); the vector it answers. */
  query(promql: string): Promise<QueryResult[]>;
  /** Waits until every target of the job has been scraped successfully. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  /** Stops it by pid and removes its dir. */
  stop(): Promise<void>;
  log(): Promise<string>;
}

interface TargetsResponse {
  data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] };
}

export async function startPrometheus(targets: string[], opts: { metricsPath?: string } = {}): Promise<TestPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-e2e-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // JSON is YAML: no YAML library needed for the config.
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: 'skiff', metrics_path: opts.metricsPath ?? '/metrics', static_configs: [{ targets }] }],
  };
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const logFile = join(dir, 'prometheus.log');
  const child = await spawnLogged(
    PROMETHEUS_BIN,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=info'],
    logFile,
  );
  const stop = async (): Promise<void> => {
    await stopChild(child, 10_000);
    await rm(dir, { recursive: true, force: true });
  };
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path);
    const body = (await res.json()) as { status: string; error?: string } & T;
    if (res.status !== 200 || body.status !== 'success') throw new Error(`prometheus ${path}: ${res.status} ${body.error ?? ''}`);
    return body;
  };
  try {
    await waitUntil('prometheus', async () => (await fetch(`${url}/-/ready`)).status === 200, { timeoutMs: 30_000, child });
  } catch (err) {
    const log = await tail(logFile, 30);
    await stop();
    throw new Error(`${(err as Error).message}\n--- prometheus log ---\n${log}`);
  }
  return {
    url,
    dir,
    child,
    stop,
    log: () => tail(logFile, 200),
    async query(promql) {
      const body = await api<{ data: { resultType: string; result: QueryResult[] } }>(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      if (body.data.resultType !== 'vector') throw new Error(`prometheus: ${promql} answered a ${body.data.resultType}`);
      return body.data.result;
    },
    async waitForTargetsUp(timeoutMs = 30_000) {
      let last = '';
      try {
        await waitUntil(
          'prometheus targets up',
          async () => {
            const t = (await api<TargetsResponse>('/api/v1/targets?state=active')).data.activeTargets;
            last = JSON.stringify(t);
            return t.length === targets.length && t.every((x) => x.health === 'up');
          },
          { timeoutMs, child, intervalMs: 200 },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}; targets: ${last}`, { cause: err });
      }
    },
  };
}

/**
 * `promtool check metrics` of an exposition: its exit code (0 clean, 3 lint problems, 1 unreadable)
 * and the problems it printed, one per line.
 */
export function promtoolCheck(text: string): Promise<{ code: number; problems: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, problems: out.split('\n').filter(Boolean) }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(text);
  });
}
