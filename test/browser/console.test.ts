import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startHerald } from '../helpers/herald';
import { connected, nextEvent, pusherJs, serverSdk } from '../helpers/clients';
import { launchBrowser } from '../sdk/helpers/browser';

const ARTIFACTS = join(__dirname, '..', '..', '..', 'test-artifacts');
const TOKEN = 'browser-console-token-0123456789';

test('debug console in Chromium: sign in, watch the live log, trigger from the form', { timeout: 90_000 }, async (t) => {
  // In CI a missing browser is a failure, never a skip (launchBrowser throws); elsewhere it skips.
  const browser = await launchBrowser(t, { viewport: { width: 1360, height: 860 } });
  if (!browser) return;
  const h = await startHerald({ options: { adminToken: TOKEN }, apps: [{}, {}] });
  t.after(() => h.stop());
  const page = browser.pages()[0] ?? (await browser.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    // The 401 of the wrong token and the 501 of the push form are expected; anything else (a CSP violation,
    // a script error, a missing file) is not.
    if (msg.type() === 'error' && !/status of (401|501)\b/.test(msg.text())) pageErrors.push(msg.text());
  });

  await page.goto(`${h.baseUrl}/console`);
  await page.locator('#login').waitFor();
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error', { hasText: 'Missing or invalid admin token' }).waitFor();
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.locator('#status[data-state="live"]').waitFor();
  assert.equal(await page.locator('#app-select option').count(), 2);

  // A pusher-js client appears in the log and in the counts.
  const client = pusherJs(h);
  t.after(() => client.disconnect());
  await connected(client);
  const channel = client.subscribe('orders');
  await nextEvent(channel, 'pusher:subscription_succeeded');
  await page.locator('#log-body tr[data-kind="subscribed"]', { hasText: 'orders' }).waitFor();
  await page.locator('#stat-connections', { hasText: /^1$/ }).waitFor();
  await page.locator('#stat-channels', { hasText: /^1$/ }).waitFor();
  // This app has no webhook targets: its webhook counts are all zero.
  await page.locator('#stat-webhooks', { hasText: /^0$/ }).waitFor();
  await page.locator('#stat-webhooks-detail', { hasText: '0 queued · 0 in flight · 0 failed · 0 dropped' }).waitFor();

  // An event triggered through the REST API (the real `pusher` package) shows up with its data.
  await serverSdk(h).trigger('orders', 'order-shipped', { id: 42, note: '<img src=x onerror="window.pwned=1">' });
  const row = page.locator('#log-body tr[data-kind="api_message"]', { hasText: 'order-shipped' });
  await row.waitFor();
  assert.match(await row.locator('pre').innerText(), /"id": 42/);
  assert.equal(await row.locator('img').count(), 0, 'event data is shown as text, never as HTML');

  // The trigger form publishes; the pusher-js client receives it.
  const received = nextEvent<{ via: string }>(channel, 'from-form');
  await page.fill('#trigger-channels', 'orders');
  await page.fill('#trigger-event', 'from-form');
  await page.fill('#trigger-data', '{"via":"console form"}');
  await page.click('#trigger-form button[type=submit]');
  assert.deepEqual(await received, { via: 'console form' });
  await page.locator('#trigger-result.ok', { hasText: 'Sent from-form to 1 channel.' }).waitFor();
  await page.locator('#log-body tr[data-kind="api_message"]', { hasText: 'from-form' }).waitFor();

  // The test-push form reports that push is not configured yet.
  await page.fill('#push-target', 'hello');
  await page.click('#push-form button[type=submit]');
  await page.locator('#push-result.bad', { hasText: 'push not configured' }).waitFor();

  // The channel filter hides other channels' rows.
  await serverSdk(h).trigger('invoices', 'invoice-paid', { id: 7 });
  await page.locator('#log-body tr', { hasText: 'invoice-paid' }).waitFor();
  await page.fill('#filter', 'orders');
  assert.equal(await page.locator('#log-body tr:visible', { hasText: 'invoice-paid' }).count(), 0);
  assert.ok((await page.locator('#log-body tr:visible').count()) >= 3);
  await page.fill('#filter', '');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'console.png'), fullPage: true });
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  assert.deepEqual(pageErrors, []);
});
