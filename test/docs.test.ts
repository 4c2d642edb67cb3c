/**
 * The README is what a first visit needs; the reference lives in docs/. These checks keep it so:
 * the README stays short, and no link in it or in docs/ leads nowhere.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { projectPath } from '../lib/paths.js';

const README_MAX_LINES = 250;

const PAGES = ['README.md', ...readdirSync(projectPath('docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];

/** The page without fenced code blocks, whose lines are neither headings nor links. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** The page's text without code blocks and inline code, where brackets are not links. */
function prose(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(path: string): Set<string> {
  const headings = withoutFences(readFileSync(path, 'utf8'))
    .split('\n')
    .filter((line) => /^#{1,6} /.test(line))
    .map((line) => anchor(line.replace(/^#+ /, '')));
  return new Set(headings);
}

/** Every link target in the page that is not a URL with a scheme: `[text](target)` and `[text]: target`. */
function relativeLinks(markdown: string): string[] {
  const text = prose(markdown);
  const targets = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g), ...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]!);
  return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe('the README', () => {
  test(`stays at most ${README_MAX_LINES} lines: reference belongs in docs/`, () => {
    const lines = readFileSync(projectPath('README.md'), 'utf8').replace(/\n$/, '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(README_MAX_LINES);
  });

  test('links every page in docs/', () => {
    const links = new Set(relativeLinks(readFileSync(projectPath('README.md'), 'utf8')).map((target) => target.split('#')[0]));
    for (const page of PAGES.filter((page) => page !== 'README.md')) expect(links, `README.md links ${page}`).toContain(page);
  });
});

describe.each(PAGES)('%s', (page) => {
  test('every relative link points to a file that exists, and every #anchor to a heading in it', () => {
    const path = projectPath(page);
    const broken: string[] = [];
    for (const target of relativeLinks(readFileSync(path, 'utf8'))) {
      const [file, fragment] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? path : join(dirname(path), decodeURIComponent(file));
      if (!existsSync(resolved)) {
        broken.push(`${target}: ${relative(projectPath(), resolved)} does not exist`);
        continue;
      }
      if (fragment !== undefined && resolved.endsWith('.md') && statSync(resolved).isFile() && !anchorsOf(resolved).has(fragment)) {
        broken.push(`${target}: no heading in ${relative(projectPath(), resolved)} has the anchor #${fragment}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('the link check itself', () => {
  test('finds relative links and their anchors, and ignores URLs and code', () => {
    const links = relativeLinks('See [a](docs/a.md#x-y), [b](https://example.com), `[c](c.md)`\n[d]: ../d.md\n```\n[e](e.md)\n```\n');
    expect(links).toEqual(['docs/a.md#x-y', '../d.md']);
    expect(anchor("The `bluegreen` command: it's fast")).toBe('the-bluegreen-command-its-fast');
  });
});

describe("docs/engine.md's configuration table", () => {
  test("has one row for each key the engine's configuration file may set, and none it refuses", () => {
    // The engine's CONFIG_DEFAULTS block (assets/instance/lib/common.sh) is the list it accepts.
    const common = readFileSync(projectPath('assets', 'instance', 'lib', 'common.sh'), 'utf8');
    const block = /readonly CONFIG_DEFAULTS='([^']*)'/.exec(common);
    expect(block, 'CONFIG_DEFAULTS in common.sh').not.toBeNull();
    const accepted = block![1]
      .split('\n')
      .map((line) => line.split('=')[0].trim())
      .filter(Boolean)
      .sort();
    const documented = readFileSync(projectPath('docs', 'engine.md'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('| `BLUEGREEN_'))
      .flatMap((line) => [...line.split('|')[1].matchAll(/`(BLUEGREEN_[A-Z0-9_]+)`/g)].map((match) => match[1]))
      .sort();
    expect(documented).toEqual(accepted);
  });
});
