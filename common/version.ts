// skiff's own version, read once from package.json (dist/common/version.js → ../../package.json).
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function skiffVersion(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    cached = pkg.version ?? '0.0.0';
  }
  return cached;
}
