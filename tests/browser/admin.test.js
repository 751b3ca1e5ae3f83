// The operators' console of `wxlogin demo` in headless Chromium: the operator signs in with the
// username and password the demo printed, finds a user, disables and enables them, ends their
// sessions, and deletes them after typing their id; a screenshot is kept for people to look at
// (tests/browser/artifacts/admin-console.png).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launchChromium } = require('./browser.js');
const { startDemo, post } = require('../../miniprogram-demo/test/harness.js');

const MINIPROGRAM = 'wx1000000000000001';

test('an operator finds, disables, enables and deletes a user', async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  assert.ok(demo.operator, 'the demo printed an operator');
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(10000);

  // Dora signs in with the mini program.
  const code = (await post(demo.emulator + '/__emulator/login', { appid: MINIPROGRAM, user: 'dora' })).body.code;
  const dora = await post(demo.server + '/api/v1/auth/login', { code });
  assert.equal(dora.status, 200);
  const me = () => fetch(demo.server + '/api/v1/me', { headers: { authorization: 'Bearer ' + dora.body.token } });

  await page.goto(demo.server + '/admin/');
  await page.fill('#username', demo.operator.username);
  await page.fill('#password', demo.operator.password);
  await page.click('#sign-in-form button[type=submit]');
  await page.locator('#finder').waitFor({ state: 'visible' });

  await page.fill('#q', dora.body.user.id);
  await page.click('#search-form button[type=submit]');
  await page.locator(`#results li[data-id="${dora.body.user.id}"]`).click();
  await page.locator('#user').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#user-id'), dora.body.user.id);
  assert.equal(await page.locator('#identities tr').count(), 1);
  assert.equal(await page.locator('#sessions tr').count(), 1, 'her live session');

  await page.click('#disable');
  await page.locator('#disabled-badge').waitFor({ state: 'visible' });
  assert.equal((await me()).status, 401, 'her token stopped working');
  const again = await post(demo.server + '/api/v1/auth/login', {
    code: (await post(demo.emulator + '/__emulator/login', { appid: MINIPROGRAM, user: 'dora' })).body.code,
  });
  assert.equal(again.body.code, 'account_disabled');
  await page.click('#enable');
  await page.locator('#disabled-badge').waitFor({ state: 'hidden' });
  assert.equal((await me()).status, 401, 'her old sessions stay ended');
  assert.equal(await page.locator('#sessions tr').count(), 0);

  fs.mkdirSync(path.join(__dirname, 'artifacts'), { recursive: true });
  await page.screenshot({ path: path.join(__dirname, 'artifacts', 'admin-console.png'), fullPage: true });

  // Delete: only once her id is typed.
  await page.click('#delete');
  assert.ok(await page.isDisabled('#confirm-delete'));
  await page.fill('#confirm-text', 'not her');
  assert.ok(await page.isDisabled('#confirm-delete'));
  await page.fill('#confirm-text', dora.body.user.id);
  await page.click('#confirm-delete');
  await page.locator('#user').waitFor({ state: 'hidden' });
  assert.equal(await page.locator(`#results li[data-id="${dora.body.user.id}"]`).count(), 0);
  assert.equal(await page.textContent('#error'), '');
});
