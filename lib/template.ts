/**
 * Fills `@@NAME@@` placeholders in the repository's shell scripts at synth time. The scripts
 * stay real files that shellcheck reads as they are; each placeholder sits inside single quotes.
 */
import * as fs from 'node:fs';
import { Token } from 'aws-cdk-lib';

const PLACEHOLDER = /@@([A-Z0-9_]+)@@/g;

/**
 * The text of `templatePath` with every placeholder replaced. Throws when the template and
 * `values` disagree (a placeholder without a value, or a value no placeholder uses), or when a
 * known value would break out of its single quotes. Values may be CDK tokens (resolved at
 * deploy time to names AWS generates, which never contain quotes).
 */
export function renderScript(templatePath: string, values: Readonly<Record<string, string>>): string {
  const template = fs.readFileSync(templatePath, 'utf8');
  const used = new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1] as string));
  const missing = [...used].filter((name) => !(name in values));
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (missing.length > 0 || unused.length > 0) {
    throw new Error(
      `${templatePath}: placeholders and values disagree` +
        (missing.length > 0 ? `; no value for ${missing.map((name) => `@@${name}@@`).join(', ')}` : '') +
        (unused.length > 0 ? `; no placeholder for ${unused.join(', ')}` : ''),
    );
  }
  for (const [name, value] of Object.entries(values)) {
    if (!Token.isUnresolved(value) && /['\n\\]/.test(value)) {
      throw new Error(`${templatePath}: the value for @@${name}@@ contains a quote, backslash or newline: ${value}`);
    }
  }
  return template.replace(PLACEHOLDER, (_match, name: string) => values[name] as string);
}
