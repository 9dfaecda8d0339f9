/**
 * The WebhookJournal contract (server/webhooks/WebhookJournal.ts), run against SqliteWebhookJournal:
 * append, remove and reload after a close, order, group commit, occupancy rows, and one process per file.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { SqliteWebhookJournal, WEBHOOK_JOURNAL_FILE } from '../../server/webhooks/SqliteWebhookJournal';
import type { JournaledWebhook, WebhookJournal } from '../../server/webhooks/WebhookJournal';
import type { WebhookEvent } from '../../server/webhooks/webhook-request';

const log = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });

interface Harness {
  /** A fresh, open journal; `reopen` closes it and opens another on the same data, with what it loaded. */
  start(t: TestContext): Promise<{
    journal: WebhookJournal;
    loaded: JournaledWebhook[];
    reopen(): Promise<{ journal: WebhookJournal; loaded: JournaledWebhook[] }>;
    /** A second journal on the same data while this one is open (must fail to open). */
    another(): WebhookJournal;
    /** Transactions written so far by the current journal. */
    commits(): number;
  }>;
}

const sqlite: Harness = {
  async start(t) {
    const dir = mkdtempSync(join(tmpdir(), 'herald-webhook-journal-'));
    const file = join(dir, WEBHOOK_JOURNAL_FILE);
    let journal = new SqliteWebhookJournal(file, log);
    const loaded = await journal.open();
    t.after(async () => {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      journal,
      loaded,
      async reopen() {
        await journal.close();
        journal = new SqliteWebhookJournal(file, log);
        return { journal, loaded: await journal.open() };
      },
      another: () => new SqliteWebhookJournal(file, log),
      commits: () => journal.commits,
    };
  },
};

/** Resolves after the current turn's group commit. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const occupied = (channel: string): WebhookEvent => ({ name: 'channel_occupied', channel });
const clientEvent = (channel: string, i: number): WebhookEvent => ({ name: 'client_event', channel, event: 'client-n', data: JSON.stringify({ i, text: 'é "quoted" \u2028' }), socket_id: '1.2', user_id: 'u1' });

function contract(name: string, h: Harness): void {
  void describe(`WebhookJournal contract: ${name}`, () => {
    void test('a new journal is empty; what is appended and not removed comes back after a reopen, in order', async (t) => {
      const s = await h.start(t);
      assert.deepEqual(s.loaded, []);
      const ids: number[] = [];
      for (let i = 0; i < 6; i++) ids.push(s.journal.append(i % 2 ? 'app2' : 'app1', `target${i % 3}`, clientEvent(`private-${i % 2}`, i), 1000 + i));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids increase in append order');
      assert.equal(new Set(ids).size, ids.length);
      await nextTurn();
      s.journal.remove(ids[1]);
      s.journal.remove(ids[4]);
      const { loaded } = await s.reopen();
      assert.deepEqual(
        loaded,
        [0, 2, 3, 5].map((i) => ({ id: ids[i], appId: i % 2 ? 'app2' : 'app1', target: `target${i % 3}`, event: clientEvent(`private-${i % 2}`, i), createdAt: 1000 + i })),
        'exact events (field order too), app, target and creation time; removals written by close',
      );
    });

    void test('ids keep increasing after a reopen, so order holds across runs', async (t) => {
      const s = await h.start(t);
      const first = s.journal.append('a', 't', occupied('one'), 1);
      const { journal } = await s.reopen();
      const second = journal.append('a', 't', occupied('two'), 2);
      assert.ok(second > first);
      const { loaded } = await s.reopen();
      assert.deepEqual(loaded.map((r) => r.event.channel), ['one', 'two']);
    });

    void test('group commit: one transaction for everything buffered in a turn, none before the turn ends', async (t) => {
      const s = await h.start(t);
      const before = s.commits();
      const ids = Array.from({ length: 500 }, (_, i) => s.journal.append('a', 't', clientEvent(`private-${i % 7}`, i), i));
      assert.equal(s.commits(), before, 'nothing written on the caller\'s path');
      await nextTurn();
      assert.equal(s.commits(), before + 1);
      for (const id of ids.slice(0, 300)) s.journal.remove(id);
      s.journal.append('a', 't', occupied('later'), 1);
      await nextTurn();
      assert.equal(s.commits(), before + 2, 'removals and appends of one turn together');
      await nextTurn();
      assert.equal(s.commits(), before + 2, 'an idle turn writes nothing');
      const { loaded } = await s.reopen();
      assert.equal(loaded.length, 201);
      for (let c = 0; c < 7; c++) {
        const seq = loaded.filter((r) => r.event.channel === `private-${c}`).map((r) => (JSON.parse((r.event as { data: string }).data) as { i: number }).i);
        assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `order on private-${c}`);
      }
    });

    void test('removing an append of the same turn cancels it: nothing is written', async (t) => {
      const s = await h.start(t);
      const before = s.commits();
      const id = s.journal.append('a', 't', occupied('gone'), 1);
      s.journal.remove(id);
      await nextTurn();
      assert.equal(s.commits(), before);
      assert.deepEqual((await s.reopen()).loaded, []);
    });

    void test('close writes what is still buffered', async (t) => {
      const s = await h.start(t);
      s.journal.append('a', 't', occupied('unflushed'), 7);
      const { loaded } = await s.reopen();
      assert.deepEqual(loaded.map((r) => [r.event, r.createdAt]), [[occupied('unflushed'), 7]]);
    });

    void test('occupancy: rows occupied and not vacated come back after a reopen, per channel its members first', async (t) => {
      const s = await h.start(t);
      assert.deepEqual(s.journal.leftOccupancy(), []);
      s.journal.occupy('app2', 'presence-b', null);
      s.journal.occupy('app1', 'presence-a', null);
      s.journal.occupy('app1', 'presence-a', 'zed');
      s.journal.occupy('app1', 'presence-a', 'amy');
      s.journal.occupy('app1', 'public', null);
      s.journal.occupy('app2', 'presence-b', 'u1');
      await nextTurn();
      s.journal.occupy('app1', 'public', null); // again: still one row
      s.journal.vacate('app1', 'presence-a', 'zed');
      s.journal.vacate('app1', 'never-occupied', null);
      const { journal } = await s.reopen();
      assert.deepEqual(journal.leftOccupancy(), [
        { appId: 'app1', channel: 'presence-a', userId: 'amy' },
        { appId: 'app1', channel: 'presence-a', userId: null },
        { appId: 'app1', channel: 'public', userId: null },
        { appId: 'app2', channel: 'presence-b', userId: 'u1' },
        { appId: 'app2', channel: 'presence-b', userId: null },
      ]);
      journal.vacate('app1', 'presence-a', 'amy');
      journal.vacate('app1', 'presence-a', null);
      const again = await s.reopen();
      assert.deepEqual(again.journal.leftOccupancy().map((r) => r.channel), ['public', 'presence-b', 'presence-b'], 'vacated by close');
      assert.deepEqual(again.loaded, [], 'occupancy is not an event');
    });

    void test('occupancy is group-committed with the events: one transaction per turn, the last change of a row wins', async (t) => {
      const s = await h.start(t);
      const before = s.commits();
      s.journal.occupy('a', 'c1', null);
      s.journal.occupy('a', 'c1', 'u1');
      s.journal.occupy('a', 'c2', null);
      s.journal.vacate('a', 'c2', null); // left within the turn: no row
      const id = s.journal.append('a', 't', occupied('c1'), 1);
      assert.equal(s.commits(), before, 'nothing written on the caller\'s path');
      await nextTurn();
      assert.equal(s.commits(), before + 1, 'rows and events in one transaction');
      s.journal.vacate('a', 'c1', 'u1');
      s.journal.occupy('a', 'c1', 'u1'); // a rejoin in the same turn: the row stays
      s.journal.remove(id);
      await nextTurn();
      assert.equal(s.commits(), before + 2);
      await nextTurn();
      assert.equal(s.commits(), before + 2, 'an idle turn writes nothing');
      const { journal, loaded } = await s.reopen();
      assert.deepEqual(loaded, []);
      assert.deepEqual(journal.leftOccupancy(), [
        { appId: 'a', channel: 'c1', userId: 'u1' },
        { appId: 'a', channel: 'c1', userId: null },
      ]);
    });

    void test('one process per journal: a second open while the first is open fails', async (t) => {
      const s = await h.start(t);
      await s.reopen(); // an existing file, opened again: the lock must be taken at open, not at the first write
      await assert.rejects(s.another().open(), /in use by another Herald process/);
    });
  });
}

contract('sqlite', sqlite);
