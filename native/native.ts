// Where the native helpers are: the static binaries `make -C native` builds into native/build/
// (skiff-pause, skiff-ns, skiff-monitor). Resolved from this module's own location, so it works
// from any working directory: dist/native/native.js → ../../native/build/NAME.
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** skiff-probe is test support only (e2e binds it into containers). */
export type NativeBinaryName = 'skiff-pause' | 'skiff-ns' | 'skiff-monitor' | 'skiff-probe';

const buildDir = fileURLToPath(new URL('../../native/build/', import.meta.url));
const found = new Set<NativeBinaryName>();

/** Absolute path of a native helper; throws, naming the command that builds it, when it is missing. */
export function nativeBinary(name: NativeBinaryName): string {
  const path = buildDir + name;
  if (!found.has(name)) {
    try {
      accessSync(path, constants.X_OK);
    } catch (err) {
      throw new Error(`native helper ${name} is not built (${path}): run \`make -C native\``, { cause: err });
    }
    found.add(name);
  }
  return path;
}
