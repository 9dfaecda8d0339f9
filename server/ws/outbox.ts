/**
 * Frames for many sockets, written once per turn of the event loop.
 *
 * A fan-out writes to every subscriber's socket, and the write syscall is most of what a delivery costs.
 * When several publishes reach the same socket in one turn (a burst of REST triggers, a run of presence
 * joins, one trigger naming many channels), queueing them and writing them together costs one syscall per
 * socket instead of one per frame. The queue is flushed from `setImmediate`, i.e. right after the poll
 * phase that produced the frames, so a lone frame waits microseconds, not a timer tick.
 */

/** What the outbox needs of a socket: it queues frames itself and writes them when asked. */
export interface Flushable {
  flush(): void;
}

const dirty: Flushable[] = [];
let scheduled = false;

/** Called by a socket when its first frame of this turn is queued; the socket is flushed once, soon. */
export function scheduleFlush(socket: Flushable): void {
  dirty.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  // Indexed loop: a flush never queues more frames, but if one ever did, it would still be written here.
  for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  dirty.length = 0;
  scheduled = false;
}
