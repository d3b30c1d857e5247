// `skiff ps`: ListContainers as crictl prints it. Without -a (or a --state, -l or -n) only running
// containers are listed. The id, pod, state and label filters go to the runtime; --name and
// --namespace (regular expressions), --image (same image id by ImageStatus), newest-first order
// and -l/-n are applied here, as crictl does. A table, ids only with -q, a field list with -v, or
// {"containers": [...]}.
import { defineCommand, type CommandContext } from '../command.js';
import { usageError } from '../args.js';
import { jsonText, outputFormat, renderTable, truncateId, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import { newestFirst, parseLabels, parseLast, POD_NAME_LABEL, POD_NAMESPACE_LABEL, regexFilter } from './filters.js';
import { mapLines } from './status.js';
import { ago } from './times.js';
import type * as v1 from '../../gen/v1.js';

export const psCommand = defineCommand({
  name: 'ps',
  summary: 'List containers',
  options: {
    verbose: { type: 'boolean', short: 'v', description: 'Show verbose information for containers' },
    id: { type: 'string', value: 'ID', description: 'Filter by container id' },
    name: { type: 'string', value: 'REGEXP', description: 'Filter by container name regular expression pattern' },
    pod: { type: 'string', short: 'p', value: 'POD-ID', description: 'Filter by pod id' },
    image: { type: 'string', value: 'IMAGE', description: 'Filter by container image' },
    state: { type: 'string', short: 's', value: 'STATE', description: 'Filter by container state: created, running, exited or unknown' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Filter by key=value label (repeatable)' },
    quiet: { type: 'boolean', short: 'q', description: 'Only display container IDs' },
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table' },
    all: { type: 'boolean', short: 'a', description: 'Show all containers' },
    latest: { type: 'boolean', short: 'l', description: 'Show the most recently created container (includes all states)' },
    last: { type: 'string', short: 'n', value: 'N', description: 'Show last n recently created containers (includes all states). Set 0 for unlimited' },
    'no-trunc': { type: 'boolean', description: 'Show output without truncating the ID' },
    namespace: { type: 'string', value: 'REGEXP', description: 'Filter by pod namespace regular expression pattern' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError('ps takes no arguments');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'table');
    const last = parseLast(values.last);
    const filter: v1.ContainerFilter = {};
    if (values.id) filter.id = values.id;
    if (values.pod) filter.pod_sandbox_id = values.pod;
    if (values.state) filter.state = { state: containerState(values.state) };
    else if (!values.all) filter.state = { state: 'CONTAINER_RUNNING' };
    // -l and -n look at every state.
    if (values.latest || last > 0) delete filter.state;
    const labels = parseLabels(values.label);
    if (Object.keys(labels).length > 0) filter.label_selector = labels;
    const byName = regexFilter('name', values.name);
    const byNamespace = regexFilter('namespace', values.namespace);

    const request: v1.ListContainersRequest = { filter };
    const r = await ctx.rpc('ListContainers', request, () => ctx.client().listContainers(request, ctx.callOptions()));
    const byImage = await imageFilter(ctx, values.image);
    const matching: v1.Container__Output[] = [];
    for (const c of r.containers) {
      if (!c.metadata || !byName(c.metadata.name) || !byNamespace(podNamespace(c))) continue;
      if (await byImage(c.image?.image ?? '')) matching.push(c);
    }
    const containers = newestFirst(matching, !!values.latest, last);

    if (format === 'json') return ctx.out(jsonText(toProtoJson('ListContainersResponse', { containers })));
    if (format === 'yaml') return ctx.out(yamlText(toProtoJson('ListContainersResponse', { containers })));
    if (values.quiet) return ctx.out(containers.map((c) => `${c.id}\n`).join(''));
    if (values.verbose) return ctx.out(containers.map((c) => verboseContainer(c)).join(''));
    ctx.out(containerTable(containers, !!values['no-trunc']));
  },
});

function containerState(text: string): v1.ContainerState__Output {
  switch (text.toLowerCase()) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
      return 'CONTAINER_RUNNING';
    case 'exited':
      return 'CONTAINER_EXITED';
    case 'unknown':
      return 'CONTAINER_UNKNOWN';
    default:
      throw usageError('--state should be one of created, running, exited or unknown');
  }
}

/** Created, Running, Exited, Unknown. */
export function containerStateName(state: v1.ContainerState__Output): string {
  const name = state.replace(/^CONTAINER_/, '');
  return name.charAt(0) + name.slice(1).toLowerCase();
}

function podNamespace(c: v1.Container__Output): string {
  return c.labels[POD_NAMESPACE_LABEL] ?? 'unknown';
}

/**
 * --image: a container matches when ImageStatus resolves its image and the flag's to the same id
 * (both must exist), so a tag, a digest or an id all select the same containers.
 */
async function imageFilter(ctx: CommandContext, image: string | undefined): Promise<(containerImage: string) => Promise<boolean>> {
  if (!image) return async () => true;
  const ids = new Map<string, string | undefined>();
  const idOf = async (name: string): Promise<string | undefined> => {
    if (!ids.has(name)) {
      const request = { image: { image: name } };
      const r = await ctx.rpc('ImageStatus', request, () => ctx.client().imageStatus(request, ctx.callOptions()));
      ids.set(name, r.image?.id);
    }
    return ids.get(name);
  };
  const wanted = await idOf(image);
  return async (containerImage) => wanted !== undefined && (await idOf(containerImage)) === wanted;
}

// kubelet passes the image id as the container's image; a bare digest is shortened like an id.
function shortImage(image: string): string {
  const m = /^(?:sha256:([0-9a-f]{64})|sha384:([0-9a-f]{96})|sha512:([0-9a-f]{128}))$/.exec(image);
  const hex = m?.[1] ?? m?.[2] ?? m?.[3];
  return hex ? truncateId(hex, '') : image;
}

export function containerTable(containers: readonly v1.Container__Output[], noTrunc: boolean, nowMs = Date.now()): string {
  const rows = [['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD', 'NAMESPACE']];
  for (const c of containers) {
    const image = c.image?.image ?? '';
    rows.push([
      noTrunc ? c.id : truncateId(c.id, ''),
      noTrunc ? image : shortImage(image),
      ago(c.created_at, nowMs),
      containerStateName(c.state),
      c.metadata?.name ?? '',
      String(c.metadata?.attempt ?? 0),
      noTrunc ? c.pod_sandbox_id : truncateId(c.pod_sandbox_id, ''),
      c.labels[POD_NAME_LABEL] ?? 'unknown',
      podNamespace(c),
    ]);
  }
  return renderTable(rows);
}

function verboseContainer(c: v1.Container__Output, nowMs = Date.now()): string {
  let text = `ID: ${c.id}\nPodID: ${c.pod_sandbox_id}\nNamespace: ${podNamespace(c)}\n`;
  if (c.metadata) {
    if (c.metadata.name) text += `Name: ${c.metadata.name}\n`;
    text += `Attempt: ${c.metadata.attempt}\n`;
  }
  text += `State: ${containerStateName(c.state)}\n`;
  if (c.image) text += `Image: ${c.image.image}\n`;
  text += `Created: ${ago(c.created_at, nowMs)}\n`;
  text += mapLines('Labels', c.labels) + mapLines('Annotations', c.annotations);
  return `${text}\n`;
}
