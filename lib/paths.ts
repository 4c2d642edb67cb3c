/** Where the repository's own files are, wherever the app is run from. */
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

export const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url));

/** A path inside the repository, from its root. */
export function projectPath(...segments: string[]): string {
  return path.join(PROJECT_DIR, ...segments);
}
