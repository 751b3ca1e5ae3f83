// The web demo under `wxlogin demo --web-require-phone`, in headless Chromium: the first QR scan
// of a person with no verified phone asks for one, the code comes from the emulator's SMS inbox
// (the page's link), and the phone joins the user who verified it with the mini program's phone
// button.

const test = require('node:test');
const assert = require('node:assert/strict');
const { launchChromium } = require('./browser.js');
const { startDemo, post } = require('../../miniprogram-demo/test/harness.js');

const MINIPROGRAM = 'wx1000000000000001';

test('the first QR scan binds a phone verified by SMS', async (t) => {
  const demo = await startDemo(['--web-require-phone']);
  t.after(() => demo.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);

  // Carol verified her phone with the mini program's phone button.
  const code = (await post(demo.emulator + '/__emulator/login', { appid: MINIPROGRAM, user: 'carol' })).body.code;
  const mini = await post(demo.server + '/api/v1/auth/login', { code });
  assert.equal(mini.status, 200);
  const phoneCode = (await post(demo.emulator + '/__emulator/phone-code', { appid: MINIPROGRAM, user: 'carol' })).body.code;
  const phone = await fetch(demo.server + '/api/v1/me/phone', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + mini.body.token },
    body: JSON.stringify({ code: phoneCode }),
  }).then((r) => r.json());
  assert.match(phone.phoneNumber, /^\+86\d{11}$/);

  // On the website she scans with another WeChat account (another person to WeChat).
  await page.goto(demo.server + '/demo/');
  await page.click('#qr-login');
  await page.waitForURL((u) => u.href.startsWith(demo.emulator + '/connect/qrconnect'));
  await page.fill('input[name=user]', 'carol-at-work');
  await page.click('button[value=allow]');
  await page.locator('#phone-step').waitFor({ state: 'visible' });
  assert.ok(!page.url().includes('ticket'), 'the ticket left the address bar');

  // Her mainland number, as she types it; the code from the inbox the page links to.
  await page.fill('#phone', phone.purePhoneNumber);
  await page.click('#send-code');
  await page.locator('#inbox').waitFor({ state: 'visible' });
  const inbox = await page.getAttribute('#inbox', 'href');
  assert.ok(inbox.startsWith(demo.emulator + '/__emulator/sms?phone='), inbox);
  const sent = await fetch(inbox).then((r) => r.json());
  assert.equal(sent.length, 1);
  await page.fill('#sms-code', sent[0].params[0]);
  await page.click('#bind');

  await page.locator('#signed-in').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#user-id'), mini.body.user.id, 'the same user');
  assert.equal(await page.textContent('#phone-number'), 'Phone: ' + phone.phoneNumber);
  const identities = await page.locator('#identities li').allTextContents();
  assert.equal(identities.length, 2, identities.join('\n'));
  assert.ok(identities.some((i) => i.startsWith('website')));
  assert.equal(await page.textContent('#error'), '');
});
