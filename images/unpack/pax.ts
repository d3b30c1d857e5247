// The raw bytes of `SCHILY.xattr.*` PAX records, which tar-stream cannot give us: it decodes every
// PAX value as UTF-8 text (headers.js decodePax), so a binary xattr value — security.capability is
// one — comes out with U+FFFD where its bytes were. Go's archive/tar, which writes most layers,
// stores these values as raw bytes (POSIX pax allows any bytes in a value).
//
// PaxTap is a pass-through Transform placed before tar-stream's extractor. It walks only the tar
// framing (512-byte headers, sizes, padding; POSIX ustar + pax, GNU long names) and, for every entry
// the extractor will emit, queues that entry's xattrs as Buffers and the offset of its data. The
// layer writer shifts one record per entry and checks the offset against tar-stream's own, so the two
// parsers can never silently disagree about which entry an xattr belongs to.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
const XATTR_PREFIX = 'SCHILY.xattr.';

export interface EntryRecord {
  /** Offset in the tar stream of the entry's data, the first byte after its header. */
  dataOffset: number;
  /** xattr name → raw value, from the entry's own (local) PAX header. */
  xattrs: Map<string, Buffer>;
}

export class PaxTap extends Transform {
  private readonly records: EntryRecord[] = [];
  private offset = 0; // bytes seen so far
  private readonly header = Buffer.alloc(BLOCK);
  private headerHave = 0;
  private skip = 0; // data (and padding) bytes of the current entry still to pass
  private pax: { want: number; parts: Buffer[]; have: number; global: boolean } | undefined;
  private local: Map<string, Buffer> | undefined; // the last local PAX header's records
  private globalSize: string | undefined;

  /** The record of the next entry, in the order tar-stream emits entries. */
  shift(): EntryRecord | undefined {
    return this.records.shift();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.pax) {
        const take = Math.min(this.pax.want - this.pax.have, chunk.length - pos);
        this.pax.parts.push(chunk.subarray(pos, pos + take));
        this.pax.have += take;
        pos += take;
        this.offset += take;
        if (this.pax.have === this.pax.want) this.endPax();
      } else if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - pos);
        this.skip -= take;
        pos += take;
        this.offset += take;
      } else {
        const take = Math.min(BLOCK - this.headerHave, chunk.length - pos);
        chunk.copy(this.header, this.headerHave, pos, pos + take);
        this.headerHave += take;
        pos += take;
        this.offset += take;
        if (this.headerHave === BLOCK) {
          this.headerHave = 0;
          this.onHeader();
        }
      }
    }
  }

  private onHeader(): void {
    const h = this.header;
    if (isZeroBlock(h)) return; // end-of-archive blocks; tar-stream skips them too
    const typeflag = h[156];
    const size = parseNumeric(h, 124, 12);
    switch (typeflag) {
      case 0x78: // 'x' PAX local
      case 0x67: // 'g' PAX global
        this.pax = { want: size, parts: [], have: 0, global: typeflag === 0x67 };
        if (size === 0) this.endPax();
        return;
      case 0x4c: // 'L' GNU long name
      case 0x4b: // 'K' GNU long link name
      case 0x4e: // 'N' old GNU long name (tar-stream reads it as one)
        this.skip = padded(size);
        return;
    }
    const local = this.local;
    this.local = undefined;
    let dataSize = size;
    // tar-stream takes a PAX size only when the entry has a local PAX header (merged with globals).
    if (local) {
      const paxSize = local.get('size')?.toString('latin1') ?? this.globalSize;
      if (paxSize) dataSize = parseInt(paxSize, 10);
    }
    // tar-stream emits directories without skipping any data, and reads a plain-file typeflag with
    // a trailing '/' in the name field as a directory (old tars).
    const isFileFlag = typeflag === 0 || typeflag === 0x30;
    if (typeflag === 0x35 || (isFileFlag && nameEndsWithSlash(h))) dataSize = 0;
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of local ?? []) {
      if (key.startsWith(XATTR_PREFIX)) xattrs.set(key.slice(XATTR_PREFIX.length), value);
    }
    this.records.push({ dataOffset: this.offset, xattrs });
    this.skip = padded(dataSize);
  }

  private endPax(): void {
    const pax = this.pax!;
    this.pax = undefined;
    this.skip = padded(pax.want) - pax.want;
    const records = parsePaxRecords(Buffer.concat(pax.parts));
    if (pax.global) {
      this.globalSize = records.get('size')?.toString('latin1') ?? this.globalSize;
    } else {
      this.local = records;
    }
  }
}

/** POSIX pax extended header records: "<len> <key>=<value>\n", len counting the whole record. */
export function parsePaxRecords(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(buf.toString('latin1', pos, space), 10);
    // Malformed tails are ignored, as tar-stream ignores them; the records before them stand.
    if (!(len > 0) || pos + len > buf.length) break;
    const record = buf.subarray(space + 1, pos + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq < 0) break;
    out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** tar-stream's test: the checksum of a block of zeros (checksum field read as spaces) is 256. */
function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    if (h[i] !== 0) return false;
  }
  return true;
}

function nameEndsWithSlash(h: Buffer): boolean {
  let end = h.indexOf(0, 0);
  if (end < 0 || end > 100) end = 100;
  return end > 0 && h[end - 1] === 0x2f;
}

/** A numeric header field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function parseNumeric(h: Buffer, offset: number, length: number): number {
  const field = h.subarray(offset, offset + length);
  if (field[0] & 0x80) {
    let n = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}
