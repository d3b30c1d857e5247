// Registry and token-server error responses turned into skiff errors whose messages read like
// Docker's: `pull docker.io/library/x:1: manifest unknown (404)`. Body formats: distribution-spec
// spec.md "Error Codes" ({"errors":[{code,message,detail}]}), token servers' {"details": …} and
// OAuth2 {"error","error_description"} (RFC 6749 §5.2).
import { SkiffError, type ErrorCode } from '../../common/errors.js';

const MAX_DETAIL = 300;

interface SpecError {
  code?: unknown;
  message?: unknown;
}

/** The error codes of a distribution-spec error body (`MANIFEST_UNKNOWN`, …). */
export function errorCodes(body: string): string[] {
  const parsed = parse(body);
  const errors = parsed?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.map((e: SpecError) => (typeof e?.code === 'string' ? e.code : '')).filter(Boolean);
}

function parse(body: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The human part of an error body: `code: message` per spec error, with the code written as
 * Docker's errcode does (lowercase, `_` → space) and not repeated when the message says the same.
 */
export function describeBody(body: string): string | undefined {
  const parsed = parse(body);
  let text: string | undefined;
  if (parsed && Array.isArray(parsed.errors) && parsed.errors.length > 0) {
    text = (parsed.errors as SpecError[])
      .map((e) => {
        const code = typeof e?.code === 'string' ? e.code.toLowerCase().replaceAll('_', ' ') : '';
        const message = typeof e?.message === 'string' ? e.message : '';
        if (code && message && message.toLowerCase() !== code) return `${code}: ${message}`;
        return code || message;
      })
      .filter(Boolean)
      .join('; ');
  } else if (parsed) {
    const pick = (k: string): string | undefined => (typeof parsed[k] === 'string' ? (parsed[k]) : undefined);
    text = pick('details') ?? pick('detail') ?? pick('error_description') ?? pick('message') ?? pick('error');
  }
  if (!text) return undefined;
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text;
}

function prefixed(prefix: string, detail: string | undefined, fallback: string): string {
  if (!detail) return `${prefix}: ${fallback}`;
  return detail.toLowerCase().startsWith(prefix) ? detail : `${prefix}: ${detail}`;
}

export type Subject = { kind: 'manifest' } | { kind: 'blob'; digest: string } | { kind: 'token'; realm: string };

/**
 * The error for a final (non-retryable, non-redirect) failure status. 401 → UNAUTHORIZED,
 * 403 → DENIED, a missing manifest or repository → IMAGE_NOT_FOUND, a missing blob →
 * REGISTRY_ERROR (the manifest names it, so the registry is broken, not the reference).
 */
export function statusError(what: string, status: number, body: string, subject: Subject): SkiffError {
  const detail = describeBody(body);
  let code: ErrorCode = 'SKIFF_REGISTRY_ERROR';
  let text: string;
  const codes = errorCodes(body);
  if (status === 401) {
    code = 'SKIFF_REGISTRY_UNAUTHORIZED';
    text = prefixed('unauthorized', detail, 'authentication required');
  } else if (status === 403) {
    code = 'SKIFF_REGISTRY_DENIED';
    text = prefixed('denied', detail, 'requested access to the resource is denied');
  } else if (
    subject.kind === 'manifest' &&
    (status === 404 || codes.includes('MANIFEST_UNKNOWN') || codes.includes('NAME_UNKNOWN'))
  ) {
    code = 'SKIFF_IMAGE_NOT_FOUND';
    text = detail ?? 'manifest unknown';
  } else if (subject.kind === 'blob' && status === 404) {
    text = `blob ${subject.digest} not found${detail ? `: ${detail}` : ''}`;
  } else if (subject.kind === 'token') {
    text = `token server ${subject.realm} failed${detail ? `: ${detail}` : ''}`;
  } else {
    text = detail ?? 'unexpected response';
  }
  return new SkiffError(code, `${what}: ${text} (${status})`);
}
