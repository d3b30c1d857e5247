// How crictl renders times: go-units' HumanDuration for "N minutes ago", Go's RFC3339Nano for
// status documents and Go's default time format for verbose listings. CRI times are int64
// nanoseconds since the epoch, which the client hands over as decimal strings.

/** Go's zero time.Time in RFC3339: what crictl prints for a start or finish that has not happened. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** docker/go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** `5 minutes ago` for a CRI timestamp. */
export function ago(nanos: string | bigint, nowMs = Date.now()): string {
  return `${humanDuration(nowMs - Number(BigInt(nanos) / 1_000_000n))} ago`;
}

function parts(nanos: string | bigint): { date: string; time: string; fraction: string } {
  const ns = BigInt(nanos);
  const iso = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString();
  const fraction = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return { date: iso.slice(0, 10), time: iso.slice(11, 19), fraction: fraction ? `.${fraction}` : '' };
}

/** Go's time.RFC3339Nano, in UTC: `2024-01-02T03:04:05.5Z`. */
export function rfc3339Nano(nanos: string | bigint): string {
  const p = parts(nanos);
  return `${p.date}T${p.time}${p.fraction}Z`;
}

/** Go's `%v` of a time.Time, in UTC: `2024-01-02 03:04:05.5 +0000 UTC`. */
export function goTime(nanos: string | bigint): string {
  const p = parts(nanos);
  return `${p.date} ${p.time}${p.fraction} +0000 UTC`;
}
