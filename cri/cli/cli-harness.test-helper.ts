// Runs the CLI's main() in-process against an endpoint, capturing what it prints: the one
// harness of the CLI unit tests.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from './main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runMain(endpoint: string, argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(['-r', endpoint, ...argv], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { code, stdout, stderr };
}

/** Writes a config file for a command to read; returns its path. */
export async function writeFixture(dir: string, name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}
