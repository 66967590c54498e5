// UI check: the Temporal Web UI, pointed at the starter's codec endpoint,
// shows a workflow's payloads decoded for a signed-in staff member, and
// encrypted without the staff session. Usage:
//   node check.js UI_URL STARTER_URL WORKFLOW_ID RUN_ID STAFF_TOKEN NEEDLE OUTDIR
// (STAFF_TOKEN: a personal token from `starter staff add`; the session is
// logged under its staff id)
// Needs playwright-core and Debian's chromium.
const { chromium } = require('playwright-core');
const [ui, starter, wid, runId, token, needle, out] = process.argv.slice(2);

async function view(signIn, shot) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  if (signIn) {
    await page.goto(starter + '/codec/session');
    await page.fill('input[name=token]', token);
    await Promise.all([page.waitForLoadState('load'), page.click('button, input[type=submit]')]);
  }
  await page.addInitScript((endpoint) => {
    localStorage.setItem('endpoint', JSON.stringify(endpoint));
    localStorage.setItem('includeCredentials', 'true');
    localStorage.setItem('passAccessToken', 'false');
    localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
  }, starter + '/codec');
  await page.goto(ui + '/namespaces/default/workflows/' + encodeURIComponent(wid) + '/' + runId + '/history');
  await page.waitForTimeout(6000);
  // Open every collapsed event so its payloads are rendered.

  await page.waitForTimeout(4000);
  const text = await page.evaluate(() => document.body.innerText);
  await page.screenshot({ path: out + '/' + shot, fullPage: true });
  await browser.close();
  return text;
}

(async () => {
  const decoded = await view(true, 'ui-with-codec.png');
  const plain = await view(false, 'ui-without-session.png');
  const ok = decoded.includes(needle) && !plain.includes(needle);
  console.log(JSON.stringify({ decodedShowsNeedle: decoded.includes(needle), withoutSessionShowsNeedle: plain.includes(needle), ok }));
  process.exit(ok ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(2); });
