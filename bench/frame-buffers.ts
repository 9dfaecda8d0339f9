/**
 * Buffers for WebSocket frames that span reads, reused instead of allocated per frame.
 *
 * Every presence joiner receives the channel's member list in one frame of 60–120 KB, so at ~1,700 joins/s
 * the generator allocated ~150 MB/s of fresh buffers. They live outside V8's heap, and that much external
 * memory kept V8's major-GC marking busy: ~6 % of the generator's core under `perf` in presence-join,
 * where the generator's core sets the pace. A frame's bytes are copied into a buffer from here and handed
 * back once the frame was handled; nothing the client hands on keeps a view of it (it copies what it keeps).
 *
 * Capacities are powers of two from 64 KB (the shared read buffer's size, below which frames rarely span
 * reads) to 16 MB, and each keeps at most `SPARES_PER_SIZE` spare buffers; other sizes are not pooled.
 */

const MIN_SHIFT = 16;
const MAX_SHIFT = 24;
/** Spare buffers kept per capacity: 256 joins in flight rarely hold more than a few dozen partial lists. */
const SPARES_PER_SIZE = 64;

const spares: ArrayBuffer[][] = Array.from({ length: MAX_SHIFT + 1 }, () => []);

/** The power of two a `size`-byte frame is kept in, or -1 when it is not pooled. */
function shiftFor(size: number): number {
  let shift = MIN_SHIFT;
  while (shift <= MAX_SHIFT && 2 ** shift < size) shift++;
  return shift <= MAX_SHIFT ? shift : -1;
}

/** A buffer of exactly `size` bytes (contents undefined), for a frame of that size. */
export function takeFrameBuffer(size: number): Buffer {
  const shift = shiftFor(size);
  if (shift < 0) return Buffer.allocUnsafe(size);
  const spare = spares[shift].pop() ?? new ArrayBuffer(2 ** shift);
  return Buffer.from(spare, 0, size);
}

/** Hands back a buffer from `takeFrameBuffer` once nothing reads it any more. */
export function giveBackFrameBuffer(buf: Buffer): void {
  const whole = buf.buffer;
  if (!(whole instanceof ArrayBuffer) || buf.byteOffset !== 0) return;
  const shift = shiftFor(whole.byteLength);
  if (shift < 0 || 2 ** shift !== whole.byteLength) return;
  const list = spares[shift];
  if (list.length < SPARES_PER_SIZE) list.push(whole);
}

/** Spare buffers held, per capacity in bytes (for tests). */
export function spareFrameBuffers(): Map<number, number> {
  const out = new Map<number, number>();
  for (let shift = MIN_SHIFT; shift <= MAX_SHIFT; shift++) if (spares[shift].length > 0) out.set(2 ** shift, spares[shift].length);
  return out;
}
