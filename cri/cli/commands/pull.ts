// `skiff pull`: PullImage with crictl's credential flags, annotations and optional pod config.
// Pulls have no deadline unless -t or --pull-timeout asks for one: a large image on a slow link
// takes minutes, and kubelet does not bound PullImage either.
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { defineCommand } from '../command.js';
import { parseDuration, usageError } from '../args.js';
import { fromProtoJson } from '../protojson.js';
import { errnoCode, errorMessage } from '../../../common/errors.js';
import type * as v1 from '../../gen/v1.js';

export const pullCommand = defineCommand({
  name: 'pull',
  summary: 'Pull an image from a registry',
  args: 'NAME[:TAG|@DIGEST]',
  options: {
    creds: { type: 'string', value: 'USERNAME[:PASSWORD]', description: 'Use USERNAME[:PASSWORD] for accessing the registry' },
    auth: { type: 'string', value: 'AUTH_STRING', description: "Use AUTH_STRING (base64 of 'USERNAME[:PASSWORD]') for accessing the registry" },
    username: { type: 'string', short: 'u', value: 'USERNAME', description: 'Use USERNAME for accessing the registry (with --password)' },
    password: { type: 'string', value: 'PASSWORD', description: 'Password for --username' },
    'pod-config': { type: 'string', value: 'FILE', description: 'Use a PodSandboxConfig JSON file for the pull (runtime handler, namespace)' },
    annotation: { type: 'string', short: 'a', multiple: true, value: 'KEY=VALUE', description: 'Annotation to be set on the pulled image (repeatable)' },
    'pull-timeout': { type: 'string', value: 'DURATION', description: 'Maximum time for the pull, 0 for none (default: -t if given, else none)' },
    pt: { type: 'string', value: 'DURATION', description: 'Alias of --pull-timeout' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0 || positionals[0] === '') throw usageError('Image name cannot be empty');
    if (positionals.length > 1) throw usageError('pull takes exactly one image');
    const request: v1.PullImageRequest = { image: { image: positionals[0] } };
    const auth = authConfig(values);
    if (auth) request.auth = auth;
    if (values.annotation) request.image = { ...request.image, annotations: parseAnnotations(values.annotation) };
    if (values['pod-config']) request.sandbox_config = await loadPodConfig(values['pod-config']);

    const timeoutText = values['pull-timeout'] ?? values.pt;
    let timeoutMs = ctx.global.timeoutSet ? ctx.global.timeoutMs : 0;
    if (timeoutText !== undefined) {
      timeoutMs = parseDuration(timeoutText);
      if (timeoutMs < 0) throw usageError('timeout should be bigger than 0');
    }
    const r = await ctx.rpc('PullImage', request, () => ctx.client().pullImage(request, { timeoutMs }));
    ctx.out(`Image is up to date for ${r.image_ref}\n`);
  },
});

interface CredentialFlags {
  creds?: string;
  auth?: string;
  username?: string;
  password?: string;
}

/** crictl's precedence: --username wins, then --creds or --auth (not both). */
export function authConfig(flags: CredentialFlags): v1.AuthConfig | undefined {
  if (flags.username !== undefined) {
    if (flags.username === '') throw usageError("username can't be empty");
    // crictl prompts for the password; skiff is often scripted, so it takes it as a flag.
    if (flags.password === undefined) throw usageError('--username needs --password');
    return { username: flags.username, password: flags.password };
  }
  if (flags.password !== undefined) throw usageError('--password needs --username');
  if (flags.creds !== undefined && flags.auth !== undefined) throw usageError('both `--creds` and `--auth` are specified');
  if (flags.creds !== undefined) {
    if (flags.creds === '') throw usageError("credentials can't be empty");
    const colon = flags.creds.indexOf(':');
    if (colon === -1) return { username: flags.creds, password: '' };
    if (colon === 0) throw usageError("username can't be empty");
    return { username: flags.creds.slice(0, colon), password: flags.creds.slice(colon + 1) };
  }
  if (flags.auth !== undefined && flags.auth !== '') return { auth: flags.auth };
  return undefined;
}

/** `-a key=value` flags into a map; the value may itself contain `=`. */
export function parseAnnotations(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw usageError(`incorrectly specified annotation: ${flag} (want KEY=VALUE)`);
    out[flag.slice(0, eq)] = flag.slice(eq + 1);
  }
  return out;
}

/** A PodSandboxConfig in protojson; like crictl, a missing uid is generated and name/namespace are required. */
export async function loadPodConfig(path: string): Promise<v1.PodSandboxConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw usageError(`load podSandboxConfig: config at ${path} not found`);
    throw new Error(`load podSandboxConfig: ${errorMessage(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw usageError(`load podSandboxConfig: ${path} is not JSON (only JSON pod configs are supported): ${errorMessage(err)}`);
  }
  const config = fromProtoJson('PodSandboxConfig', json, path) as v1.PodSandboxConfig;
  const metadata = config.metadata;
  if (!metadata) throw usageError(`load podSandboxConfig: ${path}: metadata is not set`);
  if (!metadata.uid) metadata.uid = randomUUID();
  if (!metadata.name || !metadata.namespace) throw usageError(`load podSandboxConfig: ${path}: name or namespace is not in metadata`);
  return config;
}
