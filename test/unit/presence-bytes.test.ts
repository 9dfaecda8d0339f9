import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, joinPresenceParts, presenceMemberParts, presenceSubscribedFrame } from '../../sdk/protocol';
import { JoinedBytes, presenceFrameBytes } from '../../server/state/presence-bytes';
import { LocalState } from '../../server/state/LocalState';

/** Members whose escaped parts cover quotes, backslashes, control characters, non-ASCII and surrogate pairs. */
const ODD_MEMBERS: Array<[string, string]> = [
  ['1', '{}'],
  ['ann', '{"name":"Ann","tags":["a","b"]}'],
  ['quote"d\\', '{"q":"say \\"hi\\"","bs":"\\\\"}'],
  ['ü😀', '{"emoji":"😀","ctl":"\\u0001\\n\\t","lone":"\\ud800"}'],
  ['</script>', 'null'],
  ['lone\ud800', '{"€":"€"}'],
];

/** What a client must receive for `members`, built the slow, obvious way. */
function expectedFrame(channel: string, members: Array<[string, string]>): string {
  const hash = '{' + members.map(([id, info]) => `${JSON.stringify(id)}:${info}`).join(',') + '}';
  const data = `{"presence":{"ids":${JSON.stringify(members.map(([id]) => id))},"hash":${hash},"count":${members.length}}}`;
  return encodeFrame('pusher_internal:subscription_succeeded', data, channel);
}

void test('the frame built from bytes is byte for byte the string frame, across many buffer growths', () => {
  const members: Array<[string, string]> = [...ODD_MEMBERS];
  for (let i = 0; i < 2000; i++) members.push([`user-${i}-${'é'.repeat(i % 7)}`, `{"n":${i},"s":"${'x'.repeat(i % 50)}"}`]);
  for (const n of [0, 1, ODD_MEMBERS.length, 100, members.length]) {
    const subset = members.slice(0, n);
    const ids = new JoinedBytes();
    const entries = new JoinedBytes();
    const parts = subset.map(([id, info]) => presenceMemberParts(id, info));
    for (const p of parts) {
      ids.append(p.id);
      entries.append(p.entry);
    }
    const joined = joinPresenceParts(parts);
    const bytes = presenceFrameBytes('presence-é', ids, entries, subset.length);
    assert.equal(bytes.toString('utf8'), presenceSubscribedFrame('presence-é', joined.ids, joined.entries, subset.length), `n=${n}`);
    assert.equal(bytes.toString('utf8'), expectedFrame('presence-é', subset), `n=${n}`);
  }
});

void test('LocalState keeps the reply right through joins, repeat joins and leaves, and never changes a reply once given', async () => {
  const state = new LocalState();
  const app = '1';
  const ch = 'presence-room';
  const frame = async (): Promise<Buffer> => {
    const f = await state.presenceSubscribedFrame(app, ch);
    assert.ok(Buffer.isBuffer(f));
    return f;
  };
  const present: Array<[string, string]> = [];
  for (const [id, info] of ODD_MEMBERS) {
    assert.deepEqual(await state.addMember(app, ch, id, info, 100), { added: true, full: false });
    present.push([id, info]);
    assert.equal((await frame()).toString(), expectedFrame(ch, present));
  }

  const given = await frame();
  const givenText = given.toString();
  // A second socket of a present user changes nothing: the same reply, not rebuilt.
  assert.equal((await state.addMember(app, ch, 'ann', '{"name":"Ann"}', 100)).added, false);
  assert.equal(await frame(), given);

  // A join after the reply was given appends; the reply already handed out stays as it was.
  await state.addMember(app, ch, 'late', '{"t":1}', 100);
  present.push(['late', '{"t":1}']);
  assert.equal((await frame()).toString(), expectedFrame(ch, present));
  assert.equal(given.toString(), givenText);

  // A leave rebuilds from the members still there, in join order; the second socket keeps "ann" in.
  assert.equal(await state.removeMember(app, ch, 'ann'), false);
  assert.equal(await state.removeMember(app, ch, 'quote"d\\'), true);
  present.splice(present.findIndex(([id]) => id === 'quote"d\\'), 1);
  assert.equal((await frame()).toString(), expectedFrame(ch, present));
  await state.addMember(app, ch, 'after-leave', '{}', 100);
  present.push(['after-leave', '{}']);
  assert.equal((await frame()).toString(), expectedFrame(ch, present));

  // Everyone gone: the empty list, as a fresh channel has.
  for (const [id] of present) while (!(await state.removeMember(app, ch, id)));
  assert.equal(String(await state.presenceSubscribedFrame(app, ch)), expectedFrame(ch, []));
});
