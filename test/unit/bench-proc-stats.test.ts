import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { mainThreadCpuTicks, processCpuTicks } from '../../bench/proc-stats';

void test("the main thread's CPU leaves out what another thread burns; the process's counts it", async () => {
  const main0 = mainThreadCpuTicks(process.pid);
  const all0 = processCpuTicks(process.pid);
  // 400 ms of CPU on a worker thread while the main thread waits for it.
  const worker = new Worker('const end = Date.now() + 400; while (Date.now() < end);', { eval: true });
  await new Promise((resolve) => worker.once('exit', resolve));
  const main = mainThreadCpuTicks(process.pid) - main0;
  const all = processCpuTicks(process.pid) - all0;
  assert.ok(all >= 20, `the process counted ${all} ticks for 400 ms of a thread's CPU`);
  assert.ok(main < all / 2, `the main thread counted ${main} of the process's ${all} ticks`);
});
