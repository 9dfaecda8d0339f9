/**
 * examples/chat run as its README says (`node examples/chat/server.js`, configured by environment) against
 * a test Herald, driven in Chromium: two people see each other online, typing, and messages.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startHerald } from '../helpers/herald';
import type { AppOptions } from '../../server/options/Options';
import { ensureBrowserBundle, launchBrowser, openPage } from '../sdk/helpers/browser';
import { heraldEnv, startExample } from '../sdk/helpers/examples';

const T = { timeout: 60_000 };

async function setup(t: TestContext, app: Partial<AppOptions>) {
  ensureBrowserBundle();
  const browser = await launchBrowser(t);
  if (!browser) return null;
  const h = await startHerald({ apps: [app] });
  t.after(() => h.stop());
  const url = await startExample(t, 'chat/server.js', heraldEnv(h));
  return { h, browser, url };
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

async function chatBetweenTwo(t: TestContext, app: Partial<AppOptions>): Promise<void> {
  const env = await setup(t, app);
  if (!env) return;
  const alice = await openPage(env.browser, `${env.url}/?name=alice`);
  await alice.waitForFunction(`document.getElementById('state').textContent === 'connected'`);
  const bob = await openPage(env.browser, `${env.url}/?name=bob`);

  // Both see both online.
  for (const page of [alice, bob]) {
    await page.waitForFunction(`document.getElementById('count').textContent === '2'`);
    assert.deepEqual((await page.locator('#members li').allInnerTexts()).sort(), ['alice', 'bob']);
  }
  assert.equal(await text(alice, '#members li.me'), 'alice');

  // Bob types: Alice sees it, Bob does not see himself. The indicator clears itself after 3 s, so Alice's
  // page records every text it shows rather than the test hoping to poll at the right moment.
  await alice.evaluate(() => {
    const el = document.getElementById('typing') as HTMLElement;
    const seen: string[] = [];
    (window as unknown as { typingSeen: string[] }).typingSeen = seen;
    new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await bob.locator('#text').pressSequentially('hel');
  await alice.waitForFunction(`window.typingSeen.includes('bob is typing…')`);
  assert.equal(await text(bob, '#typing'), '');

  // Bob sends: both get the message, and the indicator clears.
  await bob.locator('#text').pressSequentially('lo');
  await bob.locator('#send button').click();
  for (const page of [alice, bob]) await page.waitForFunction(`document.querySelector('#messages li')?.textContent === 'bobhello'`);
  assert.equal(await text(alice, '#typing'), '');

  // Bob leaves: Alice sees one member.
  await bob.close();
  await alice.waitForFunction(`document.getElementById('count').textContent === '1'`);
  assert.deepEqual(await alice.locator('#members li').allInnerTexts(), ['alice']);
}

void test('chat: two pages see each other online, typing (client events) and messages', T, (t) => chatBetweenTwo(t, { clientEvents: true }));

void test('chat: typing is relayed by the app server when the app has no client events', T, (t) => chatBetweenTwo(t, { clientEvents: false }));

void test('chat: the auth endpoint refuses other channels and missing names', T, async (t) => {
  const env = await setup(t, { clientEvents: true });
  if (!env) return;
  const post = (q: string, body: string) => fetch(`${env.url}/auth${q}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  assert.equal((await post('?name=eve', 'socket_id=1.2&channel_name=presence-admin')).status, 403);
  assert.equal((await post('', 'socket_id=1.2&channel_name=presence-chat')).status, 403);
  const ok = await post('?name=eve', 'socket_id=1.2&channel_name=presence-chat');
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as { auth: string; channel_data: string };
  assert.deepEqual(JSON.parse(body.channel_data), { user_id: 'eve', user_info: { name: 'eve' } });
  assert.equal((await post('?name=eve', 'socket_id=bogus&channel_name=presence-chat')).status, 400);
});
