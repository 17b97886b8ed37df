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
const post = env('STAFFROOM_POST');
const postTitle = env('STAFFROOM_POST_TITLE');
const resource = env('STAFFROOM_RESOURCE');
const resourceTitle = env('STAFFROOM_RESOURCE_TITLE');
const network = env('STAFFROOM_NETWORK');
const expectedFile = readFileSync(env('STAFFROOM_FILE'));
const shots = env('STAFFROOM_SCREENSHOTS');
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
  const session = cookies.find((c) => c.name === 'staffroom_session');
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

  step('keyboard: the skip link is the first stop and leads to the content');
  await page.goto(`${origin}/`);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  console.log('browser tests passed');
} finally {
  await browser.close();
}
