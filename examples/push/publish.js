// Publishes a headline on the "news" channel with a Web Push fallback:
//   node examples/push/publish.js "Big news" [page origin, default http://127.0.0.1:3002]
// Open tabs get it live; registered browsers without an open tab get a notification.
'use strict';
const { setTimeout: sleep } = require('node:timers/promises');
const { heraldConfig, loadServerSdk } = require('../shared');

/** One trigger: live to connected subscribers of `news`, Web Push to the devices interested in `news` that are not. */
async function publishHeadline(herald, title, origin) {
  const res = await herald.trigger('news', 'headline', { title, at: Date.now() }, {
    push: {
      notification: { title: 'Herald news', body: title, deep_link: `${origin}/`, hide_if_focused: true },
      data: { title },
      ttl: 3600,
      urgency: 'high',
    },
  });
  return { publishId: res.body.push && res.body.push.publishId };
}

async function main() {
  const { Herald } = loadServerSdk();
  const herald = new Herald(heraldConfig());
  const title = process.argv[2] || `News at ${new Date().toLocaleTimeString()}`;
  const { publishId } = await publishHeadline(herald, title, process.argv[3] || 'http://127.0.0.1:3002');
  // Give the push worker a moment, then report where the deliveries stand.
  await sleep(1500);
  const status = await herald.getPublish(publishId);
  // delivered / opened: what the service workers reported back so far (herald-sw.js does it by itself).
  console.log(
    `published "${title}" (${publishId}): ${status.sent} pushed, ${status.skippedOnline} live, ${status.pending} pending, ${status.failed} failed; ` +
      `${status.delivered} delivered, ${status.opened} opened so far`,
  );
  herald.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`publish failed: ${err.status === 501 ? 'push is not enabled on Herald (start it with HERALD_PUSH_SUBJECT=mailto:you@example.com)' : err.serverMessage || err.message}`);
    process.exit(1);
  });
}

module.exports = { publishHeadline };
