#!/usr/bin/env node
// skiffd: the CRI daemon. Flags override the config file, which overrides embedded defaults.
import { parseArgs } from 'node:util';
import { SkiffError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { skiffVersion } from '../common/version.js';
import { DEFAULT_CONFIG_PATH, loadConfig } from './config.js';
import { Daemon } from './daemon.js';

const log = logger('daemon');

const USAGE = `usage: skiffd [flags]

  --config PATH     TOML config file (default ${DEFAULT_CONFIG_PATH}, used if present)
  --socket PATH     CRI socket (default /run/skiff/skiff.sock)
  --root DIR        persistent state (default /var/lib/skiff)
  --state DIR       volatile state (default /run/skiff)
  --log-level LVL   fatal|error|warn|info|debug|trace (default info)
  --version         print the version and exit
  -h, --help        this help

Environment: SKIFF_TRACE=module[,module] (or *) traces chosen modules (registry, pull, unpack, cri, …).`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        socket: { type: 'string' },
        root: { type: 'string' },
        state: { type: 'string' },
        'log-level': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`skiffd: ${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(`skiffd ${skiffVersion()}\n`);
    return 0;
  }
  const { config, source } = await loadConfig({
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.socket !== undefined ? { socket: values.socket } : {}),
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(values.state !== undefined ? { state: values.state } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
  });
  log.info({ source }, 'configuration loaded');
  const daemon = new Daemon(config);
  await daemon.start();
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, 'shutting down');
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await daemon.stop();
  log.info('skiffd stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = err instanceof SkiffError ? err.message : errorMessage(err);
    log.fatal({ err }, msg);
    process.stderr.write(`skiffd: ${msg}\n`);
    process.exit(1);
  },
);
