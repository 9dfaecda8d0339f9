/**
 * Frames for many sockets, written once per turn of the event loop.
 *
 * A fan-out writes to every subscriber's socket, and the write syscall is most of what a delivery costs.
 * When several publishes reach the same socket in one turn (a burst of REST triggers, a run of presence
 * joins, one trigger naming many channels), queueing them and writing them together costs one syscall per
 * socket instead of one per frame.
 *
 * When the frames are written depends on how busy the process is:
 * - Idle (no flush in the last 5 ms): as soon as the job that queued them is done, from a microtask.
 *   A REST trigger's frames then reach its subscribers before its HTTP response goes out (the response is
 *   written from a later microtask), as a bare broadcast server would do, and the client that triggered is
 *   not woken by its response ahead of the delivery.
 * - Active: from `setImmediate`, right after the poll phase, so the frames of every request and message
 *   read in that phase share one write per socket; a lone frame waits microseconds, not a timer tick.
 * - Saturated (the last flush took ≥ 2 ms, ended moments ago, and the event loop has not waited for work
 *   since): the next flush waits twice as long as that one took, at most 10 ms. Frames then travel in fewer,
 *   fuller writes, which is what lets a saturated node keep up: flushes take at most a third of its time,
 *   and the rest goes to reading what to send. (Waiting once as long left half, and wrote ~10 % more per
 *   delivery at full load.)
 *   "Has not waited" is what tells a backlog from a lone publish that follows a long fan-out. At full load
 *   the next request is already read when a flush ends (0 ms idle after at least 90 % of the long flushes
 *   of fanout-1k-max, multi-channel and rest-100-subs). A trigger that comes 2 ms after a 9 ms fan-out to
 *   1,000 sockets finds the loop asleep; holding it 10 ms for company that is not coming put whole
 *   triggers into fanout-1k's slowest 1 % of deliveries.
 */

import { performance } from 'node:perf_hooks';

/** What the outbox needs of a socket: it queues frames itself and writes them when asked. */
export interface Flushable {
  flush(): void;
}

/** A flush that took at least this long means the process is busy writing (ms). */
const BUSY_FLUSH_MS = 2;
/** Longest a frame waits for company under load (ms). */
const MAX_DELAY_MS = 10;
/** No flush for this long means the process is idle: nothing else is likely to arrive in this turn (ms). */
const IDLE_GAP_MS = 5;
/** The event loop waiting this long for work since the last flush means it is not behind (ms). */
const WAITED_MS = 1;

const dirty: Flushable[] = [];
let scheduled = false;
let lastFlushEnd = 0;
let lastFlushMs = 0;
/** The event loop's idle time (ms, from `eventLoopUtilization`) when the last long flush ended. */
let idleAtLastFlush = 0;

/** The frames last joined in this flush and the bytes they made (see `joinedFrames`). */
let lastJoin: { parts: Buffer[]; joined: Buffer } | null = null;

/**
 * The frames a socket queued, as one buffer for one write. Subscribers of the same channels queue the same
 * frames in the same order, and the outbox flushes them one after another, so the previous socket's result
 * is usually the answer: compared frame by frame (by identity; frames are never changed once built), then
 * shared. A busy presence channel then costs one copy per flush, not one per member.
 */
export function joinedFrames(parts: Buffer[]): Buffer {
  const last = lastJoin;
  if (last !== null && last.parts.length === parts.length) {
    let i = 0;
    while (i < parts.length && last.parts[i] === parts[i]) i++;
    if (i === parts.length) return last.joined;
  }
  lastJoin = { parts, joined: Buffer.concat(parts) };
  return lastJoin.joined;
}

/** Called by a socket when its first frame of this turn is queued; the socket is flushed once, soon. */
export function scheduleFlush(socket: Flushable): void {
  dirty.push(socket);
  if (scheduled) return;
  scheduled = true;
  const sinceLast = performance.now() - lastFlushEnd;
  if (lastFlushMs >= BUSY_FLUSH_MS && sinceLast < lastFlushMs && !waitedSinceLastFlush()) setTimeout(flushAll, Math.min(2 * lastFlushMs, MAX_DELAY_MS));
  else if (sinceLast >= IDLE_GAP_MS) queueMicrotask(flushAll);
  else setImmediate(flushAll);
}

/** Whether the event loop sat waiting for work (for `WAITED_MS` or more) since the last long flush ended. */
function waitedSinceLastFlush(): boolean {
  return performance.eventLoopUtilization().idle - idleAtLastFlush >= WAITED_MS;
}

function flushAll(): void {
  const start = performance.now();
  // Indexed loop: a flush never queues more frames, but if one ever did, it would still be written here.
  for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  dirty.length = 0;
  lastJoin = null;
  scheduled = false;
  lastFlushEnd = performance.now();
  lastFlushMs = lastFlushEnd - start;
  // Read only after a long flush: nothing else asks for it.
  if (lastFlushMs >= BUSY_FLUSH_MS) idleAtLastFlush = performance.eventLoopUtilization().idle;
}
