/**
 * A presence channel's member list kept as UTF-8 bytes, for the `subscription_succeeded` reply every
 * joiner gets. The reply holds every member, so it is O(n) bytes on the wire whatever we do; what this
 * saves is the work around those bytes. Kept as appended strings, each reply was a rope of n pieces that
 * `ws` first flattened and measured (Buffer.byteLength) and then encoded again: ~170 µs per join into a
 * channel of 1,000 members. Joined into one buffer, each join still copied the whole list into fresh
 * memory (~65 µs). As pieces, the list's bytes go from where they are kept straight into one writev.
 */
import { PRESENCE_FRAME_MIDDLE, type PresenceMemberParts, presenceFrameHead, presenceFrameTail } from '../../sdk/protocol';
import { textFrameStart, type FramePieces } from '../ws/frame';

const COMMA = 0x2c;
const MIDDLE = Buffer.from(PRESENCE_FRAME_MIDDLE, 'utf8');

/**
 * Parts joined with commas, as bytes; append is amortised O(part). Appending only ever writes past the
 * bytes already there (a larger buffer gets a copy), so a view handed out by `bytes()` never changes.
 */
class JoinedBytes {
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;

  get length(): number {
    return this.used;
  }

  append(part: string): void {
    // A UTF-16 code unit never takes more than 3 UTF-8 bytes, so this bound needs no byteLength pass.
    const worst = this.used + 1 + part.length * 3;
    if (worst > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(worst, this.buf.length * 2, 64));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    if (this.used > 0) this.buf[this.used++] = COMMA;
    this.used += this.buf.write(part, this.used, 'utf8');
  }

  /** The joined bytes so far, as a view that later appends leave alone. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}

/**
 * A channel's members as the reply needs them: their ids joined in one list and their `"id":info` entries
 * in another, both in join order.
 */
export class MemberBytes {
  readonly ids = new JoinedBytes();
  readonly entries = new JoinedBytes();

  append(parts: PresenceMemberParts): void {
    this.ids.append(parts.id);
    this.entries.append(parts.entry);
  }

  /**
   * The frame of `presenceSubscribedFrame(channel, ids, entries, count)`, byte for byte, in pieces: the
   * member lists are views of the bytes kept here, not copies.
   */
  framePieces(channel: string, count: number): FramePieces {
    const tail = Buffer.from(presenceFrameTail(count), 'utf8');
    const rest = this.ids.length + MIDDLE.length + this.entries.length + tail.length;
    const pieces = [textFrameStart(presenceFrameHead(channel), rest), this.ids.bytes(), MIDDLE, this.entries.bytes(), tail];
    // An empty list would be an empty write; leave it out.
    return pieces.filter((p) => p.length > 0);
  }
}
