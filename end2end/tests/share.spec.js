// Sharing a run: from the editor (the link is copied and shown), opened by someone else
// in a fresh browser (no cookies), readable without JavaScript, and forked into the
// editor as a new draft.
const { test, expect, openEditor, setCode } = require('./helpers');

const CODE = "# greets whoever is named\nname = input()\nprint(f'shared with {name}')\n";

test('share from the editor, open the link in a fresh browser, fork it', async ({ page, browser }) => {
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await openEditor(page);
  // Nothing to share before a run has finished.
  await expect(page.locator('[data-testid=share]')).toBeDisabled();
  await setCode(page, CODE);
  await page.fill('#stdin', 'Ada');
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('shared with Ada\n', { timeout: 30_000 });

  await page.click('[data-testid=share]');
  const toast = page.locator('[data-testid=share-toast]');
  await expect(toast).toContainText('Link copied');
  // A share counts like a run against a guest's quota: one run and one share leave 3 of 5.
  await expect(page.locator('[data-testid=quota]')).toContainText('3 of 5');
  const link = await toast.locator('input.share-link').inputValue();
  expect(link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9]{11}$/);
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);
  await page.screenshot({ path: 'screenshots/share-toast.png' });

  // Someone else: a new browser context with no cookies.
  const other = await browser.newContext({ extraHTTPHeaders: { 'X-Forwarded-For': '10.200.1.2' } });
  const reader = await other.newPage();
  await reader.goto(link);
  await expect(reader).toHaveTitle('Python program · Own-IDE');
  await expect(reader.locator('[data-testid=shared-code]')).toContainText("print(f'shared with {name}')");
  await expect(reader.locator('[data-testid=shared-code] .tok-comment')).toHaveText('# greets whoever is named');
  await expect(reader.locator('[data-testid=shared-stdin]')).toHaveText('Ada');
  await expect(reader.locator('pre.stdout')).toHaveText('shared with Ada\n');
  await expect(reader.locator('.status-line [data-verdict=ok]')).toHaveText('OK');
  await expect(reader.locator('meta[property="og:description"]')).toHaveAttribute('content', /^# greets whoever is named\nname = input\(\)/);
  await reader.screenshot({ path: 'screenshots/shared-page.png' });

  // Open in editor: a new draft with the code, language and input; the share is unchanged.
  await reader.click('[data-testid=fork]');
  await expect(reader).toHaveURL(/\/\?fork=[A-Za-z0-9]{11}$/);
  await expect(reader.locator('.cm-host.mounted .cm-content')).toContainText("print(f'shared with {name}')");
  await expect(reader.locator('#language')).toHaveValue('python');
  await expect(reader.locator('#stdin')).toHaveValue('Ada');
  await reader.locator('.cm-content').click();
  await reader.keyboard.press('ControlOrMeta+End');
  await reader.keyboard.insertText("print('forked')\n");
  await reader.click('button.run');
  await expect(reader.locator('pre.stdout')).toHaveText('shared with Ada\nforked\n', { timeout: 30_000 });
  await reader.goto(link);
  await expect(reader.locator('[data-testid=shared-code]')).not.toContainText('forked');
  await other.close();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a run is shared from its page, and the shared page and the fork work', async ({ page }) => {
    await page.goto('/');
    await page.fill('textarea#code', CODE);
    await page.fill('#stdin', 'Grace');
    await page.click('button.run');
    await expect(page).toHaveURL(/\/runs\/[0-9a-f]{32}$/);
    await expect(page.locator('pre.stdout')).toHaveText('shared with Grace\n');

    await page.click('[data-testid=share]');
    await expect(page).toHaveURL(/\/s\/[A-Za-z0-9]{11}\?new=1$/);
    const slug = new URL(page.url()).pathname.slice(3);
    await expect(page.locator('input.share-link')).toHaveValue(`/s/${slug}`);
    await expect(page.locator('[data-testid=shared-code] .tok-keyword').last()).toHaveText('print');
    await expect(page.locator('[data-testid=shared-stdin]')).toHaveText('Grace');
    await expect(page.locator('pre.stdout')).toHaveText('shared with Grace\n');
    await expect(page.locator('[data-verdict=ok]')).toHaveText('OK');

    await page.click('[data-testid=fork]');
    await expect(page.locator('textarea#code')).toHaveValue(CODE);
    await expect(page.locator('#stdin')).toHaveValue('Grace');
  });
});

test.describe('a program of two files, without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the shared page shows every file, the entry first, each under its name', async ({ page }) => {
    const files = [
      { name: 'helper.py', content: '# the helper\ndef greet():\n    return "hi from helper"\n' },
      { name: 'app.py', content: 'from helper import greet\nprint(greet())\n' },
    ];
    const run = await page.request.post('/api/v1/runs?wait=true', { data: { language: 'python', files, main: 'app.py' } });
    expect(run.status()).toBe(200);
    const { id } = await run.json();
    const share = await page.request.post(`/api/v1/runs/${id}/share`);
    expect(share.status()).toBe(201);
    const { slug } = await share.json();

    await page.goto(`/s/${slug}`);
    const names = page.locator('.shared-files h3.file-name');
    await expect(names).toHaveText(['app.py (entry file)', 'helper.py']);
    await expect(page.locator('[data-testid=shared-code]')).toContainText('from helper import greet');
    await expect(page.locator('pre.code-view[data-file="app.py"]')).toContainText('print(greet())');
    await expect(page.locator('pre.code-view[data-file="helper.py"] .tok-comment')).toHaveText('# the helper');
    await expect(page.locator('pre.stdout')).toHaveText('hi from helper\n');
    await page.screenshot({ path: 'screenshots/shared-two-files.png', fullPage: true });
  });
});
