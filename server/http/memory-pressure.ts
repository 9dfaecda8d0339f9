import { getHeapStatistics } from 'node:v8';

/** What `/ready` reports about memory. */
export interface MemoryReading {
  /** `rss` against a configured budget (e.g. a container limit), or `heap` against V8's heap limit. */
  basis: 'rss' | 'heap';
  usedBytes: number;
  limitBytes: number;
  percent: number;
  /** Above the threshold: the node should take no new traffic. */
  over: boolean;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapLimit: number;
}

function sampleProcess(): MemorySample {
  const heap = getHeapStatistics();
  return { rss: process.memoryUsage.rss(), heapUsed: heap.used_heap_size, heapLimit: heap.heap_size_limit };
}

/**
 * Memory use against the threshold. With `limitBytes` set (a container's limit) the resident set is
 * compared, since that is what the OOM killer sees; without it, the JS heap against V8's own limit, which
 * is where a Node process runs out first when nothing else bounds it.
 */
export function readMemory(thresholdPercent: number, limitBytes: number, sample: MemorySample = sampleProcess()): MemoryReading {
  const basis = limitBytes > 0 ? 'rss' : 'heap';
  const usedBytes = basis === 'rss' ? sample.rss : sample.heapUsed;
  const limit = basis === 'rss' ? limitBytes : sample.heapLimit;
  const percent = Math.round((usedBytes / limit) * 1000) / 10;
  return { basis, usedBytes, limitBytes: limit, percent, over: percent > thresholdPercent };
}
