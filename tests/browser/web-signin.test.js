// Web sign-in end to end in headless Chromium: the web demo's sign-in page, WeChat's QR and
// consent pages (the emulator's), back to the signed-in page, one person by UnionID.

const test = require('node:test');
const assert = require('node:assert/strict');
const { launchChromium } = require('./browser.js');
const { startDemo, post } = require('../../miniprogram-demo/test/harness.js');

const MINIPROGRAM = 'wx1000000000000001';

test('website QR login and Official Account pages sign in the mini program user', async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);

  // The person first signed in with the mini program.
  const code = (await post(demo.emulator + '/__emulator/login', { appid: MINIPROGRAM, user: 'alice' })).body.code;
  const mini = await post(demo.server + '/api/v1/auth/login', { code });
  assert.equal(mini.status, 200);

  await t.test('website: scan the QR code and confirm', async () => {
    await page.goto(demo.server + '/demo/');
    await page.click('#qr-login');
    await page.waitForURL((u) => u.href.startsWith(demo.emulator + '/connect/qrconnect'));
    assert.equal(await page.locator('#qrcode svg').count(), 1, 'a QR code image');
    await page.fill('input[name=user]', 'alice');
    await page.click('button[value=allow]');
    await page.locator('#signed-in').waitFor({ state: 'visible' });
    assert.equal(await page.textContent('#user-id'), mini.body.user.id);
    const identities = await page.locator('#identities li').allTextContents();
    assert.equal(identities.length, 2, identities.join('\n'));
    assert.ok(identities.some((i) => i.startsWith('website')));
    assert.ok(!page.url().includes('ticket'), 'the ticket left the address bar');
  });

  await t.test('sign out, then the Official Account page', async () => {
    await page.click('#sign-out');
    await page.locator('#signed-out').waitFor({ state: 'visible' });
    await page.click('#oa-login');
    await page.waitForURL((u) => u.href.startsWith(demo.emulator + '/connect/oauth2/authorize'));
    await page.fill('input[name=user]', 'alice');
    await page.click('button[value=allow]');
    await page.locator('#signed-in').waitFor({ state: 'visible' });
    assert.equal(await page.textContent('#user-id'), mini.body.user.id);
    assert.equal(await page.locator('#identities li').count(), 3);
  });

  await t.test('refusing in WeChat comes back signed out, with a message', async () => {
    await page.click('#sign-out');
    await page.locator('#signed-out').waitFor({ state: 'visible' });
    await page.click('#qr-login');
    await page.waitForURL((u) => u.href.startsWith(demo.emulator));
    await page.click('button[value=refuse]');
    await page.waitForURL((u) => u.href.startsWith(demo.server + '/demo/'));
    await page.locator('#signed-out').waitFor({ state: 'visible' });
    assert.equal(await page.textContent('#error'), 'You refused the sign-in in WeChat.');
  });

  await t.test('a ticket link sent to someone else signs nobody in (login CSRF)', async () => {
    // The attacker signs in as themselves with their own tools, and keeps the callback's
    // redirect (the ticket link) instead of following it.
    const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    const start = await fetch(demo.server + '/api/v1/oauth/website/authorize?redirectUri=' +
      encodeURIComponent(demo.server + '/demo/') + '&codeChallenge=' + challenge, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const state = new URL(start.headers.get('location')).searchParams.get('state');
    const code = (await post(demo.emulator + '/__emulator/oauth-code',
      { appid: 'wx2000000000000002', user: 'mallory', scope: 'snsapi_login' })).body.code;
    const back = await fetch(demo.server + '/api/v1/oauth/website/callback?code=' + code +
      '&state=' + state, { redirect: 'manual' });
    const ticketUrl = back.headers.get('location');
    assert.match(ticketUrl || '', /\/demo\/#ticket=/);

    // The victim opens the link: the page has no verifier for it, the server refuses the ticket.
    const victimContext = await browser.newContext();
    t.after(() => victimContext.close());
    const victim = await victimContext.newPage();
    await victim.goto(ticketUrl);
    await victim.locator('#signed-out').waitFor({ state: 'visible' });
    assert.match(await victim.textContent('#error'), /codeVerifier/);
    assert.equal(await victim.evaluate(() => sessionStorage.getItem('wxlogin.token')), null);
  });
});
