// Help text of the skiff CLI, laid out like crictl's (urfave/cli): NAME, USAGE, COMMANDS, OPTIONS.
import { GLOBAL_OPTIONS, type OptionSpecs } from './args.js';
import type { Command } from './command.js';

/** `skiff help`: the command list and the global flags. */
export function mainHelp(commands: readonly Command[]): string {
  const label = (c: Command): string => [c.name, ...c.aliases].join(', ');
  const width = Math.max(...commands.map((c) => label(c).length)) + 3;
  const lines = [
    'NAME:',
    '   skiff - client for CRI v1 runtimes (skiffd, containerd, CRI-O), with crictl\'s commands and flags',
    '',
    'USAGE:',
    '   skiff [global options] command [command options] [arguments...]',
    '',
    'COMMANDS:',
    ...commands.map((c) => `   ${label(c).padEnd(width)}${c.summary}`),
    `   ${'help, h'.padEnd(width)}Shows a list of commands or help for one command`,
    '',
    'GLOBAL OPTIONS:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    "Run 'skiff COMMAND --help' for the flags of a command.",
  ];
  return `${lines.join('\n')}\n`;
}

/** `skiff CMD --help` and `skiff help CMD`. */
export function commandHelp(command: Command): string {
  const lines = [
    'NAME:',
    `   skiff ${command.name} - ${command.summary}`,
    '',
    'USAGE:',
    `   skiff ${command.name} [command options]${command.args ? ` ${command.args}` : ''}`,
  ];
  if (command.aliases.length) lines.push('', 'ALIASES:', `   ${command.aliases.join(', ')}`);
  lines.push('', 'OPTIONS:', ...optionLines({ ...command.options, help: { type: 'boolean', short: 'h', description: 'Show help' } }));
  return `${lines.join('\n')}\n`;
}

function optionLines(options: OptionSpecs): string[] {
  const names = Object.entries(options).map(([name, spec]) => {
    const value = spec.type === 'string' ? ` ${spec.value ?? 'value'}` : '';
    return `--${name}${value}${spec.short ? `, -${spec.short}${value}` : ''}`;
  });
  const width = Math.max(...names.map((n) => n.length)) + 2;
  return Object.values(options).map((spec, i) => `   ${names[i].padEnd(width)}${spec.description}`);
}
