/**
 * The engine bundle's content hash, computed at synth time over the directory the stack zips
 * (`assets/instance/`) and written into the deploy document, which installs only the bundle with
 * this hash. CDK zips a directory asset when it publishes it, so the zip's own bytes are not
 * known at synth time; the files are.
 *
 * The hash is the SHA-256 of `sha256sum`'s output for every regular file, `./`-relative paths in
 * byte order: what `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`
 * prints in the unpacked bundle (assets/ssm/bluegreen-document.sh `tree_hash`). File modes are
 * left out: zip entries do not reliably carry them. Since the hash covers regular files only, a
 * bundle may hold nothing else but directories: the document refuses one with a symbolic link
 * (or a fifo, or a device) before it changes anything, and this refuses to hash one.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function engineTreeHash(dir: string): string {
  const files: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) files.push(`./${child}`);
      else {
        throw new Error(
          `engine bundle ${dir}: ${child} is ${entry.isSymbolicLink() ? 'a symbolic link' : 'neither a regular file nor a directory'}. ` +
            'The host installs only bundles of regular files and directories (the content hash covers nothing else); ' +
            'replace it with a copy of the file it stands for.',
        );
      }
    }
  };
  walk('');
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const listing = files
    .map((file) => `${createHash('sha256').update(fs.readFileSync(path.join(dir, file))).digest('hex')}  ${file}\n`)
    .join('');
  return createHash('sha256').update(listing).digest('hex');
}
