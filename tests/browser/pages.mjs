// Drives a Staffroom node's web pages in Debian's Chromium, as a teacher would: a visitor's
// 404, signing in with a one-time link (and the link refused the second time), reading a
// thread whose hostile markdown must not run, a search narrowed by a facet, a file
// downloaded byte-identical, an accessibility check (axe-core: no serious or critical
// violations) and screenshots at desktop and phone widths. Run by tests/browser.rs, which
// starts the node and passes what it made in the environment.

import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const origin = env('STAFFROOM_WEB');
const link = env('STAFFROOM_LINK');
const plainLink = env('STAFFROOM_PLAIN_LINK');
const post = env('STAFFROOM_POST');
const postTitle = env('STAFFROOM_POST_TITLE');
const resource = env('STAFFROOM_RESOURCE');
const resourceTitle = env('STAFFROOM_RESOURCE_TITLE');
const network = env('STAFFROOM_NETWORK');
const expectedFile = readFileSync(env('STAFFROOM_FILE'));
const shots = env('STAFFROOM_SCREENSHOTS');
const writerLink = env('STAFFROOM_WRITER_LINK');
const writerKey = env('STAFFROOM_WRITER_KEY');
const otherOrigin = env('STAFFROOM_OTHER_WEB');
const otherLink = env('STAFFROOM_OTHER_LINK');
const privateNetwork = env('STAFFROOM_PRIVATE_NETWORK');
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60_000,
});
const step = (text) => console.log(`-- ${text}`);
try {
  // bypassCSP only so the test can inject axe-core; the pages' own policy is checked by the
  // Rust tests and would block any inline script the markdown smuggled in regardless.
  const context = await browser.newContext({ acceptDownloads: true, bypassCSP: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });

  step('a visitor gets 404 for an entry');
  let response = await page.goto(`${origin}/e/${post}`);
  assert.equal(response.status(), 404);

  step('sign in with the one-time link');
  await page.goto(link);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${origin}/`, { timeout: 10_000 }).catch(async (e) => {
    console.log(page.url(), await page.content());
    throw e;
  });
  await page.getByRole('heading', { name: "Your school's networks" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.startsWith('staffroom_'));
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));

  step('the link does not sign in twice');
  const other = await browser.newContext();
  const second = await other.newPage();
  await second.goto(link);
  const [reused] = await Promise.all([
    second.waitForResponse((r) => r.url().endsWith('/sign-in') && r.request().method() === 'POST'),
    second.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(reused.status(), 403);
  await other.close();

  step('read the thread: the reply nested, the hostile markdown inert');
  await page.goto(`${origin}/n/${network}`);
  await page.getByRole('link', { name: postTitle }).click();
  await page.getByRole('heading', { name: postTitle, level: 1 }).waitFor();
  const nested = page.locator('ol.comments ol.comments li', { hasText: 'How did it go?' });
  assert.equal(await nested.count(), 1, 'the reply sits inside the comment it answers');
  await page.getByText('click me').click().catch(() => {});
  await page.waitForTimeout(300);
  assert.deepEqual(dialogs, [], 'no script of the author ran');
  assert.equal(await page.locator('article script').count(), 0);

  step('search, narrowed by the kind facet');
  await page.goto(`${origin}/search`);
  await page.getByRole('searchbox').fill('');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'Resource', exact: true }).click();
  await page.getByRole('link', { name: resourceTitle }).waitFor();
  assert.equal(await page.getByRole('link', { name: postTitle }).count(), 0);

  step('download the resource file, byte-identical');
  await page.getByRole('link', { name: resourceTitle }).click();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'fractions.pdf' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'fractions.pdf');
  const got = readFileSync(await download.path());
  assert.ok(got.equals(expectedFile), `downloaded ${got.length} bytes, expected ${expectedFile.length}`);

  step('a member teacher keeps their key in the browser and shares a resource with a file');
  // bypassCSP only for the axe-core injection below (the policy itself is checked elsewhere).
  const writing = await browser.newContext({ bypassCSP: true });
  const writer = await writing.newPage();
  writer.setDefaultTimeout(30_000);
  writer.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await writer.goto(writerLink);
  await writer.getByRole('button', { name: 'Sign in' }).click();
  await writer.waitForURL(`${origin}/`);
  await writer.goto(`${origin}/key`);
  await writer.getByLabel('Or the key itself').fill('00'.repeat(32));
  await writer.getByRole('button', { name: 'Keep it in this browser' }).click();
  await writer.getByText('Not kept: this is the key of author').waitFor();
  await writer.getByLabel('Or the key itself').fill(writerKey);
  await writer.getByRole('button', { name: 'Keep it in this browser' }).click();
  await writer.getByText('Your key is kept in this browser').waitFor();
  const extractable = await writer.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('staffroom', 1);
    open.onsuccess = () => {
      const get = open.result.transaction('keys').objectStore('keys').getAll();
      get.onsuccess = () => resolve(get.result.map((k) => k.extractable));
    };
  }));
  assert.deepEqual(extractable, [false], 'the key is kept unreadable');
  await writer.goto(`${origin}/n/${network}/write`);
  const sharedBytes = Buffer.from('Lesson plan: fractions on a number line.\n'.repeat(5000));
  const resourceForm = writer.locator('form[data-kind="resource"]');
  await resourceForm.getByLabel('Title').fill('Shared from the browser');
  await resourceForm.getByLabel('Description (markdown)').fill('A *number line* lesson.');
  await resourceForm.getByLabel('Subjects, separated by commas').fill('mathematics');
  // Its sources: the school's existing resource by its page address, and a web page.
  await resourceForm.getByLabel(/^Based on/).fill(`${origin}/e/${resource}\nhttps://example.org/number lines`);
  await resourceForm.locator('input[type=file]').setInputFiles({ name: 'number-line.txt', mimeType: 'text/plain', buffer: sharedBytes });
  // A second file dropped on the drop zone, as a teacher drags one from their desktop.
  const dropped = await writer.evaluateHandle(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['Answers: 1/2, 3/4.'], 'answers.txt', { type: 'text/plain' }));
    return transfer;
  });
  await resourceForm.locator('.drop').dispatchEvent('drop', { dataTransfer: dropped });
  assert.equal(await resourceForm.locator('ul.uploads progress').count(), 2, 'each file has its progress bar');
  await resourceForm.getByRole('button', { name: 'Sign and post' }).click();
  await writer.waitForURL(/\/e\/[0-9a-f]{64}$/).catch(async (e) => {
    throw new Error(`not posted: ${await resourceForm.locator('.status').textContent()} (${e.message})`);
  });
  const sharedId = writer.url().split('/').pop();
  await writer.getByRole('heading', { name: 'Shared from the browser', level: 1 }).waitFor();
  assert.equal(await writer.getByRole('link', { name: 'number-line.txt' }).count(), 1);
  assert.equal(await writer.getByRole('link', { name: 'answers.txt' }).count(), 1, 'the dropped file was shared too');
  const basedOn = writer.locator('tr', { has: writer.getByRole('rowheader', { name: 'Based on' }) });
  await basedOn.getByRole('link', { name: resourceTitle }).waitFor();
  assert.equal(await basedOn.getByRole('link', { name: 'https://example.org/number%20lines' }).count(), 1, 'the web page, percent-encoded');
  const sharedLd = JSON.parse(await writer.locator('script[type="application/ld+json"]').textContent());
  assert.deepEqual(sharedLd.isBasedOn, [`${origin}/e/${resource}`, 'https://example.org/number%20lines']);

  step('an enquiry and a note from the browser, the note under its stage');
  await writer.goto(`${origin}/n/${network}/write`);
  const enquiryForm = writer.locator('form[data-kind="enquiry"]');
  await enquiryForm.getByLabel('The question').fill('Do number lines help with fractions?');
  await enquiryForm.getByRole('button', { name: 'Sign and post' }).click();
  await writer.waitForURL(/\/e\/[0-9a-f]{64}$/);
  const enquiryId = writer.url().split('/').pop();
  await writer.getByLabel('Stage').selectOption('evidence');
  await writer.getByLabel('The note (markdown)').fill('Quiz scores rose by a fifth.');
  await writer.locator('form[data-kind="enquiry_note"]').getByRole('button', { name: 'Sign and post' }).click();
  await writer.waitForURL((url) => url.pathname !== `/e/${enquiryId}`);
  await writer.goto(`${origin}/e/${enquiryId}`);
  const evidence = writer.locator('section', { has: writer.getByRole('heading', { name: 'Notes by stage' }) });
  await evidence.getByRole('heading', { name: 'Evidence', level: 3 }).waitFor();
  await evidence.getByText('Quiz scores rose by a fifth.').waitFor();

  step('a comment from the browser, nested under the entry');
  await writer.goto(`${origin}/e/${sharedId}`);
  await writer.getByLabel('Your comment (markdown)').fill('Used it with Year 7 today.');
  await writer.getByRole('button', { name: 'Sign and post' }).click();
  await writer.waitForURL((url) => url.pathname !== `/e/${sharedId}`);
  await writer.getByRole('heading', { name: /Used it with Year 7/ }).waitFor();
  await writer.goto(`${origin}/e/${sharedId}`);
  await writer.locator('ol.comments li', { hasText: 'Used it with Year 7 today.' }).waitFor();

  step('a post in a private network: sealed by the school node, then signed here');
  await writer.goto(`${origin}/n/${privateNetwork}/write`);
  const privateForm = writer.locator('form[data-kind="blog_post"]');
  await privateForm.getByLabel('Title').fill('Only for our reading group');
  await privateForm.getByLabel('Text (markdown)').fill('Sealed before **anyone** signs it.');
  await privateForm.getByRole('button', { name: 'Sign and post' }).click();
  await writer.waitForURL(/\/e\/[0-9a-f]{64}$/);
  await writer.getByRole('heading', { name: 'Only for our reading group', level: 1 }).waitFor();
  await writer.getByText('anyone').waitFor();
  await writer.setViewportSize({ width: 1280, height: 800 });
  await writer.goto(`${origin}/n/${network}/write`);
  await writer.screenshot({ path: `${shots}/write-desktop.png`, fullPage: true });
  await writer.setViewportSize({ width: 390, height: 844 });
  await writer.screenshot({ path: `${shots}/write-phone.png`, fullPage: true });
  await writer.addScriptTag({ content: axeSource });
  const writeAxe = await writer.evaluate(async () => await globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
  }));
  assert.deepEqual(writeAxe.violations.filter((v) => ['serious', 'critical'].includes(v.impact)).map((v) => v.id), [], 'write page');
  await writing.close();

  step('the resource arrives on the second node, its file byte-identical');
  const there = await browser.newContext({ acceptDownloads: true });
  const reader = await there.newPage();
  await reader.goto(otherLink);
  await reader.getByRole('button', { name: 'Sign in' }).click();
  await reader.waitForURL(`${otherOrigin}/`);
  let arrived = false;
  for (let i = 0; i < 60 && !arrived; i++) {
    arrived = (await reader.goto(`${otherOrigin}/e/${sharedId}`)).status() === 200;
    if (!arrived) await reader.waitForTimeout(500);
  }
  assert.ok(arrived, 'the entry reached the second node within 30 s');
  let fetched = null;
  for (let i = 0; i < 60 && !fetched; i++) {
    const r = await there.request.get(`${otherOrigin}/e/${sharedId}/files/0`);
    if (r.status() === 200) fetched = await r.body();
    else await reader.waitForTimeout(500);
  }
  assert.ok(fetched && fetched.equals(sharedBytes), 'the file reached the second node byte-identical');
  await there.close();

  const pages = {
    home: `${origin}/`,
    stream: `${origin}/n/${network}`,
    thread: `${origin}/e/${post}`,
    resource: `${origin}/e/${resource}`,
    search: `${origin}/search?q=`,
  };
  for (const [name, url] of Object.entries(pages)) {
    step(`accessibility and screenshots: ${name}`);
    for (const [width, height, label] of [[1280, 800, 'desktop'], [390, 844, 'phone']]) {
      await page.setViewportSize({ width, height });
      await page.goto(url);
      await page.screenshot({ path: `${shots}/${name}-${label}.png`, fullPage: true });
    }
    await page.addScriptTag({ content: axeSource });
    const results = await page.evaluate(async () => await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    }));
    const serious = results.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [], `${name}`);
    console.log(`   ${results.passes.length} checks passed, ${results.violations.length} minor`);
  }

  step('reading works without JavaScript');
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const noScript = await plain.newPage();
  await noScript.goto(link.replace(/[0-9a-f]{64}$/, '0'.repeat(64)));
  await noScript.getByRole('button', { name: 'Sign in' }).click();
  assert.equal(await noScript.getByText('not known here').count(), 1, 'an unknown link is refused');
  await noScript.goto(plainLink);
  await noScript.getByRole('button', { name: 'Sign in' }).click();
  await noScript.waitForURL(`${origin}/`);
  await noScript.goto(`${origin}/n/${network}`);
  await noScript.getByRole('link', { name: postTitle }).click();
  await noScript.getByRole('heading', { name: postTitle, level: 1 }).waitFor();
  await plain.close();

  step('keyboard: the skip link is the first stop and leads to the content');
  await page.goto(`${origin}/`);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  console.log('browser tests passed');
} finally {
  await browser.close();
}
