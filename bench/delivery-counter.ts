/** Counts deliveries and their latency for a scenario; the sink every benchmark connection reports to. */
import { LatencyHistogram } from './latency-histogram';
import type { WsEvents } from './ws-client';

export class DeliveryCounter implements WsEvents {
  /** Benchmark events received, over all connections. */
  count = 0;
  latency = new LatencyHistogram();
  /** Generator-clock time of the latest delivery (µs), to close the measured window on the last one. */
  lastRecvUs = 0;
  /**
   * Other events received (e.g. presence member_added) by name, over all connections. Boxed counts: one
   * lookup per event instead of a get and a set, for the millions of member_added of a presence run.
   */
  readonly otherEvents = new Map<string, { n: number }>();
  /**
   * The last name counted and its box. The client hands over the very string it returned for the previous
   * frame when the name repeats, so a run of member_added costs a pointer compare each, not a Map lookup
   * (which was ~3 % of the generator's core in presence-join).
   */
  private lastName = '';
  private lastBox: { n: number } | null = null;

  onDelivery(sentUs: number, recvUs: number): void {
    this.count++;
    this.latency.record(recvUs - sentUs);
    this.lastRecvUs = recvUs;
  }

  onOtherEvent(name: string): void {
    if (name === this.lastName && this.lastBox !== null) {
      this.lastBox.n++;
      return;
    }
    let box = this.otherEvents.get(name);
    if (box === undefined) {
      box = { n: 0 };
      this.otherEvents.set(name, box);
    }
    box.n++;
    this.lastName = name;
    this.lastBox = box;
  }

  other(name: string): number {
    return this.otherEvents.get(name)?.n ?? 0;
  }

  /** Forgets warm-up traffic so that figures cover the measured window only. */
  reset(): void {
    this.count = 0;
    this.latency = new LatencyHistogram();
    this.lastRecvUs = 0;
    this.otherEvents.clear();
    this.lastBox = null;
  }
}
