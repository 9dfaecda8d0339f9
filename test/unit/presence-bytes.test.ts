import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, joinPresenceParts, presenceMemberParts, presenceSubscribedFrame } from '../../sdk/protocol';
import { MemberBytes } from '../../server/state/presence-bytes';
import { LocalState } from '../../server/state/LocalState';
import { textFrame, type FramePieces } from '../../server/ws/frame';

/** Members whose escaped parts cover quotes, backslashes, control characters, non-ASCII and surrogate pairs. */
const ODD_MEMBERS: Array<[string, string]> = [
  ['1', '{}'],
  ['ann', '{"name":"Ann","tags":["a","b"]}'],
  ['quote"d\\', '{"q":"say \\"hi\\"","bs":"\\\\"}'],
  ['ü😀', '{"emoji":"😀","ctl":"\\u0001\\n\\t","lone":"\\ud800"}'],
  ['</script>', 'null'],
  ['lone\ud800', '{"€":"€"}'],
];

/** The frame the pieces make, checked to be exactly the one-piece frame of its text; returns that text. */
function piecesText(pieces: FramePieces): string {
  assert.ok(pieces.every((p) => p.length > 0), 'no empty piece');
  const whole = Buffer.concat(pieces);
  const payload = whole.subarray(whole[1] === 126 ? 4 : whole[1] === 127 ? 10 : 2).toString('utf8');
  // The header's length field must count the bytes the pieces add up to: the same frame textFrame builds.
  assert.ok(whole.equals(textFrame(payload)), 'header and payload as textFrame builds them');
  return payload;
}

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
    const bytes = new MemberBytes();
    const parts = subset.map(([id, info]) => presenceMemberParts(id, info));
    for (const p of parts) bytes.append(p);
    const joined = joinPresenceParts(parts);
    const text = piecesText(bytes.framePieces('presence-é', subset.length));
    assert.equal(text, presenceSubscribedFrame('presence-é', joined.ids, joined.entries, subset.length), `n=${n}`);
    assert.equal(text, expectedFrame('presence-é', subset), `n=${n}`);
  }
});

void test('LocalState keeps the reply right through joins, repeat joins and leaves, and never changes a reply once given', async () => {
  const state = new LocalState();
  const app = '1';
  const ch = 'presence-room';
  const pieces = async (): Promise<FramePieces> => {
    const f = await state.presenceSubscribedFrame(app, ch);
    assert.ok(Array.isArray(f), 'LocalState hands out frame pieces');
    return f;
  };
  const frame = async (): Promise<string> => piecesText(await pieces());
  const present: Array<[string, string]> = [];
  for (const [id, info] of ODD_MEMBERS) {
    assert.deepEqual(await state.addMember(app, ch, id, info, 100), { added: true, full: false, rejoined: false });
    present.push([id, info]);
    assert.equal(await frame(), expectedFrame(ch, present));
  }

  const given = await pieces();
  const givenText = piecesText(given);
  // A second socket of a present user changes nothing: the same reply, not rebuilt.
  assert.equal((await state.addMember(app, ch, 'ann', '{"name":"Ann"}', 100)).added, false);
  assert.equal(await pieces(), given);

  // Joins after the reply was given append to the bytes it views, in place and then into larger buffers;
  // the reply already handed out (perhaps still queued on a socket) stays as it was.
  await state.addMember(app, ch, 'late', '{"t":1}', 1000);
  present.push(['late', '{"t":1}']);
  assert.equal(await frame(), expectedFrame(ch, present));
  for (let i = 0; i < 300; i++) {
    await state.addMember(app, ch, `more-${i}`, `{"i":${i}}`, 1000);
    present.push([`more-${i}`, `{"i":${i}}`]);
  }
  assert.equal(await frame(), expectedFrame(ch, present));
  assert.equal(piecesText(given), givenText);

  // A leave rebuilds from the members still there, in join order; the second socket keeps "ann" in.
  assert.equal((await state.removeMember(app, ch, 'ann')).removed, false);
  assert.equal((await state.removeMember(app, ch, 'quote"d\\')).removed, true);
  present.splice(present.findIndex(([id]) => id === 'quote"d\\'), 1);
  assert.equal(await frame(), expectedFrame(ch, present));
  await state.addMember(app, ch, 'after-leave', '{}', 1000);
  present.push(['after-leave', '{}']);
  assert.equal(await frame(), expectedFrame(ch, present));

  // Everyone gone: the empty list, as a fresh channel has.
  for (const [id] of present) while (!(await state.removeMember(app, ch, id)).removed);
  assert.equal(String(await state.presenceSubscribedFrame(app, ch)), expectedFrame(ch, []));
});
