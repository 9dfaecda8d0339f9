/**
 * examples/pusher-compat: the unchanged pusher-js page (public and private channel, auth signed by the
 * `pusher` package) receives an event sent by the unchanged `pusher` script, all pointed at Herald.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { launchBrowser, openPage } from '../sdk/helpers/browser';
import { heraldEnv, runExample, startExample } from '../sdk/helpers/examples';

void test('pusher-compat: the pusher-js page receives what trigger.js sends', { timeout: 60_000 }, async (t) => {
  const browser = await launchBrowser(t);
  if (!browser) return;
  const h = await startHerald();
  t.after(() => h.stop());
  const env = heraldEnv(h);
  const url = await startExample(t, 'pusher-compat/server.js', env);
  const page = await openPage(browser, url);
  await page.waitForFunction(`document.body.dataset.public === 'subscribed' && document.body.dataset.private === 'subscribed'`);
  assert.equal(await page.locator('#state').innerText(), 'connected');

  const out = await runExample('pusher-compat/trigger.js', ['hello from pusher'], env);
  assert.match(out, /sent "hello from pusher"/);
  assert.match(out, /"my-channel":\{"subscription_count":1\}/);
  await page.waitForFunction(`document.querySelectorAll('#events li').length === 2`);
  assert.deepEqual((await page.locator('#events li').allInnerTexts()).sort(), ['my-channel: hello from pusher', 'private-my-channel: hello from pusher']);
});
