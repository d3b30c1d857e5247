// Request id checks shared by the RuntimeService handlers.
import { SkiffError } from '../../common/errors.js';

export function requireId(id: string, rpc: string, field: string): string {
  if (!id) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: ${field} must not be empty`);
  if (id.length > 64 || !/^[a-f0-9]+$/.test(id)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: ${field} "${id.slice(0, 80)}" is not a skiff id`);
  return id;
}
