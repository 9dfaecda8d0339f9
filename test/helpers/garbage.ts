/** Forced garbage collection for the tests that check what a node lets go of. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full garbage collection, without starting node with --expose-gc (a fresh context picks the flag up). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * Collects between turns of the event loop (WeakRef targets live until the current job ends) until every
 * WeakRef is empty or `tries` run out; returns how many still hold their target.
 */
export async function collectUntilGone(refs: WeakRef<object>[], tries = 10): Promise<number> {
  for (let i = 0; i < tries; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    if (refs.every((r) => r.deref() === undefined)) return 0;
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}
