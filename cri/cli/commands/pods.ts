// `skiff pods`: ListPodSandbox as crictl prints it. The id, state and label filters go to the
// runtime; --name and --namespace (regular expressions), newest-first order and -l/-n are applied
// here, as crictl does. A table, ids only with -q, a field list with -v, or {"items": [...]}.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { jsonText, outputFormat, renderTable, truncateId, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import { newestFirst, parseLabels, parseLast, regexFilter } from './filters.js';
import { mapLines } from './status.js';
import { ago, goTime } from './times.js';
import type * as v1 from '../../gen/v1.js';

export const podsCommand = defineCommand({
  name: 'pods',
  summary: 'List pods',
  options: {
    id: { type: 'string', value: 'ID', description: 'Filter by pod id' },
    name: { type: 'string', value: 'REGEXP', description: 'Filter by pod name regular expression pattern' },
    namespace: { type: 'string', value: 'REGEXP', description: 'Filter by pod namespace regular expression pattern' },
    state: { type: 'string', short: 's', value: 'STATE', description: 'Filter by pod state: ready or notready' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Filter by key=value label (repeatable)' },
    verbose: { type: 'boolean', short: 'v', description: 'Show verbose info for pods' },
    quiet: { type: 'boolean', short: 'q', description: 'List only pod IDs' },
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table' },
    latest: { type: 'boolean', short: 'l', description: 'Show the most recently created pod' },
    last: { type: 'string', short: 'n', value: 'N', description: 'Show last n recently created pods. Set 0 for unlimited' },
    'no-trunc': { type: 'boolean', description: 'Show output without truncating the ID' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError('pods takes no arguments');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'table');
    const filter: v1.PodSandboxFilter = {};
    if (values.id) filter.id = values.id;
    if (values.state) filter.state = { state: podState(values.state) };
    const labels = parseLabels(values.label);
    if (Object.keys(labels).length > 0) filter.label_selector = labels;
    const byName = regexFilter('name', values.name);
    const byNamespace = regexFilter('namespace', values.namespace);
    const last = parseLast(values.last);

    const request: v1.ListPodSandboxRequest = { filter };
    const r = await ctx.rpc('ListPodSandbox', request, () => ctx.client().listPodSandbox(request, ctx.callOptions()));
    const matching = r.items.filter((p) => p.metadata && byName(p.metadata.name) && byNamespace(p.metadata.namespace));
    const pods = newestFirst(matching, !!values.latest, last);

    if (format === 'json') return ctx.out(jsonText(toProtoJson('ListPodSandboxResponse', { items: pods })));
    if (format === 'yaml') return ctx.out(yamlText(toProtoJson('ListPodSandboxResponse', { items: pods })));
    if (values.quiet) return ctx.out(pods.map((p) => `${p.id}\n`).join(''));
    if (values.verbose) return ctx.out(pods.map(verbosePod).join(''));
    ctx.out(podTable(pods, !!values['no-trunc']));
  },
});

function podState(text: string): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  switch (text.toLowerCase()) {
    case 'ready':
      return 'SANDBOX_READY';
    case 'notready':
      return 'SANDBOX_NOTREADY';
    default:
      throw usageError('--state should be ready or notready');
  }
}

export function podStateName(state: v1.PodSandbox__Output['state']): string {
  return state === 'SANDBOX_READY' ? 'Ready' : 'NotReady';
}

function runtimeHandler(pod: v1.PodSandbox__Output): string {
  return pod.runtime_handler || '(default)';
}

export function podTable(pods: readonly v1.PodSandbox__Output[], noTrunc: boolean, nowMs = Date.now()): string {
  const rows = [['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME']];
  for (const pod of pods) {
    rows.push([
      noTrunc ? pod.id : truncateId(pod.id, ''),
      ago(pod.created_at, nowMs),
      podStateName(pod.state),
      pod.metadata?.name ?? '',
      pod.metadata?.namespace ?? '',
      String(pod.metadata?.attempt ?? 0),
      runtimeHandler(pod),
    ]);
  }
  return renderTable(rows);
}

function verbosePod(pod: v1.PodSandbox__Output): string {
  let text = `ID: ${pod.id}\n`;
  const m = pod.metadata;
  if (m) {
    if (m.name) text += `Name: ${m.name}\n`;
    if (m.uid) text += `UID: ${m.uid}\n`;
    if (m.namespace) text += `Namespace: ${m.namespace}\n`;
    if (m.attempt) text += `Attempt: ${m.attempt}\n`;
  }
  text += `Status: ${podStateName(pod.state)}\n`;
  text += `Created: ${goTime(pod.created_at)}\n`;
  text += mapLines('Labels', pod.labels) + mapLines('Annotations', pod.annotations);
  return `${text}Runtime: ${runtimeHandler(pod)}\n\n`;
}
