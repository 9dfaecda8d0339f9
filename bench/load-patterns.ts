/**
 * The three ways the generator paces work: a bounded pool over a fixed list (connect N sockets), an open
 * loop at a fixed rate (triggers/s, latency scenarios) and a closed loop with bounded in-flight requests
 * (throughput scenarios). All are bounded in count and time.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `task(i)` for every i in [0, count) with at most `concurrency` running. The first failure rejects;
 * each worker stops at its own first failure, so a dead server does not produce a storm of retries.
 */
export async function forEachBounded(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/**
 * Starts `fire(i)` at `ratePerSecond` for `durationMs`, scheduled against absolute times so timer lateness
 * does not lower the rate. Does not wait for one request before the next (open loop), then waits for all.
 * Stops starting new ones after the first failure, and rejects with it once all have settled. Returns how
 * many were started.
 */
export async function runAtRate(
  ratePerSecond: number,
  durationMs: number,
  fire: (i: number) => Promise<void>,
): Promise<number> {
  const total = Math.max(1, Math.floor((ratePerSecond * durationMs) / 1000));
  const periodMs = 1000 / ratePerSecond;
  const startMs = performance.now();
  const settled: Promise<void>[] = [];
  // Requests run concurrently with the schedule, so each one's failure is taken at once (an unobserved
  // rejection would end the process) and reported after the others settled.
  let failure: { error: unknown } | null = null;
  let i = 0;
  for (; i < total && failure === null; i++) {
    const delay = startMs + i * periodMs - performance.now();
    if (delay > 0) await sleep(delay);
    settled.push(
      fire(i).then(undefined, (error: unknown) => {
        failure ??= { error };
      }),
    );
  }
  await Promise.all(settled);
  if (failure !== null) throw (failure as { error: unknown }).error;
  return i;
}

/**
 * Keeps `concurrency` calls of `step` in flight until `durationMs` has passed. `ready` (optional) holds
 * new calls back while it returns false, e.g. while too many deliveries are still outstanding, so that
 * the measured rate is one the whole path sustains rather than one that only fills buffers.
 * Returns how many calls completed.
 */
export async function runClosedLoop(
  concurrency: number,
  durationMs: number,
  step: () => Promise<void>,
  ready?: () => boolean,
): Promise<number> {
  const endMs = performance.now() + durationMs;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < endMs) {
      if (ready !== undefined && !ready()) {
        await sleep(1);
        continue;
      }
      await step();
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done;
}

/** Polls `predicate` every `pollMs` until true or `timeoutMs` passed; resolves to the last result. */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const endMs = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() >= endMs) return false;
    await sleep(pollMs);
  }
  return true;
}
