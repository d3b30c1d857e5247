// The container's process: argv, environment, working directory, terminal — the image
// config merged with the CRI config the way Docker and containerd merge them
// (containerd internal/cri/opts/spec_opts.go WithProcessArgs; moby daemon/commit.go).
import { posix } from 'node:path';
import { invalid, type SpecOption } from './option.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A CRI command replaces the image Entrypoint and drops its Cmd; CRI args replace the Cmd. An
 * Entrypoint of [""] means "none" (docker's `--entrypoint ""`).
 */
export const withProcessArgs: SpecOption = (spec, input) => {
  const { command, args } = input.config;
  const image = input.image;
  let cmd = command;
  let rest = args;
  if (cmd.length === 0) {
    if (rest.length === 0) rest = image.Cmd ?? [];
    const entrypoint = image.Entrypoint ?? [];
    cmd = entrypoint.length === 1 && entrypoint[0] === '' ? [] : entrypoint;
  }
  const argv = [...cmd, ...rest];
  if (argv.length === 0) throw invalid(input, 'no command specified');
  spec.process.args = argv;
};

/**
 * PATH default, then HOSTNAME, then the image's env, then the CRI envs: a later value replaces an
 * earlier one in place; an image entry without "=" unsets the variable (containerd's WithEnv).
 */
export const withEnv: SpecOption = (spec, input) => {
  const env = new Map<string, string>();
  const set = (entry: string): void => {
    const eq = entry.indexOf('=');
    if (eq < 0) env.delete(entry);
    else if (eq > 0) env.set(entry.slice(0, eq), entry);
  };
  set(DEFAULT_PATH);
  if (input.sandbox.hostname) set(`HOSTNAME=${input.sandbox.hostname}`);
  for (const e of input.image.Env ?? []) set(e);
  for (const kv of input.config.envs) {
    if (kv.key) set(`${kv.key}=${kv.value.toString()}`);
  }
  spec.process.env = [...env.values()];
};

/** CRI working_dir, else the image's WorkingDir, else "/". */
export const withCwd: SpecOption = (spec, input) => {
  const fromCri = input.config.working_dir;
  if (fromCri) {
    if (!posix.isAbsolute(fromCri)) throw invalid(input, `working_dir "${fromCri}" is not an absolute path`);
    spec.process.cwd = posix.normalize(fromCri);
    return;
  }
  // Docker resolves a relative image WorkingDir against "/".
  spec.process.cwd = input.image.WorkingDir ? posix.resolve('/', input.image.WorkingDir) : '/';
};

export const withTerminal: SpecOption = (spec, input) => {
  spec.process.terminal = input.config.tty;
};
