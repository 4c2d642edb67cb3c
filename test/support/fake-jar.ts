/**
 * A stand-in for the app's jar where only its bytes matter (synth, upload, checksum): a valid
 * zip with a manifest, written in-process so that unit tests start no `zip`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

let fakeJarPath: string | undefined;

/** A minimal valid jar (a zip holding only a manifest), written once per test process. */
export function fakeJar(): string {
  if (fakeJarPath === undefined) {
    fakeJarPath = join(mkdtempSync(join(tmpdir(), 'bluegreen-fake-jar-')), 'app.jar');
    writeFileSync(fakeJarPath, storedZip('META-INF/MANIFEST.MF', Buffer.from('Manifest-Version: 1.0\n')));
  }
  return fakeJarPath;
}

/**
 * A zip archive of one uncompressed file (APPNOTE 6.3: local header, data, central directory,
 * end record), dated 1980-01-01 so that the same content gives the same bytes.
 */
function storedZip(name: string, data: Buffer): Buffer {
  const fileName = Buffer.from(name, 'utf8');
  const crc = crc32(data);
  const dosTime = 0; // 00:00:00
  const dosDate = (1 << 5) | 1; // 1980-01-01: years since 1980 in bits 9-15, month in 5-8, day in 0-4
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4); // version needed: 1.0, stored
  local.writeUInt16LE(0, 6); // flags
  local.writeUInt16LE(0, 8); // method: stored
  local.writeUInt16LE(dosTime, 10);
  local.writeUInt16LE(dosDate, 12);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  local.writeUInt16LE(0, 28);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0
  central.writeUInt16LE(10, 6);
  central.writeUInt16LE(0, 8);
  central.writeUInt16LE(0, 10);
  central.writeUInt16LE(dosTime, 12);
  central.writeUInt16LE(dosDate, 14);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  // Extra field, comment, disk number and internal attributes stay 0.
  central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: a regular file, rw-r--r--
  central.writeUInt32LE(0, 42); // offset of the local header
  const centralOffset = local.length + fileName.length + data.length;
  const centralSize = central.length + fileName.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8); // entries on this disk
  end.writeUInt16LE(1, 10); // entries in all
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, fileName, data, central, fileName, end]);
}
