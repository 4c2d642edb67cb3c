/**
 * Writes docs/context-keys.md from the app's one list of context keys (lib/context-keys.ts).
 * Run it after changing that list: `npx tsx scripts/context-keys-doc.ts`. A unit test
 * (test/constructs/context-keys.test.ts) fails while the file and the list differ.
 */
import { writeFileSync } from 'node:fs';
import { CONTEXT_KEYS_DOC, renderContextKeysReference } from '../lib/context-keys.js';
import { projectPath } from '../lib/paths.js';

const target = projectPath(...CONTEXT_KEYS_DOC);
writeFileSync(target, renderContextKeysReference());
console.log(`wrote ${target}`);
