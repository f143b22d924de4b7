// The first page loads, hydrates, answers a click, runs code, and is photographed.
const { test, expect, openEditor, setCode } = require('./helpers');

test('the editor hydrates, runs Python with stdin and shows the result', async ({ page }) => {
  await openEditor(page);
  await expect(page).toHaveTitle(/Own-IDE/);
  await expect(page.locator('.output')).toContainText('Press Run or Ctrl+Enter');

  // Interactive after hydration: switching the language loads its starter template.
  await page.selectOption('#language', 'cpp');
  await expect(page.locator('.cm-content')).toContainText('#include <iostream>');
  await page.selectOption('#language', 'python');

  await setCode(page, 'import sys\nname = sys.stdin.readline().strip()\nprint(f"Hello, {name}!")\n');
  await page.fill('#stdin', 'Ada');
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('Hello, Ada!\n');
  await expect(page.locator('.status-line [data-verdict=ok]')).toHaveText('OK');
  await expect(page.locator('.status-line .measures')).toContainText('exit 0');

  await page.screenshot({ path: 'screenshots/editor-light.png' });
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await page.screenshot({ path: 'screenshots/editor-dark.png' });
});

test('an unknown page is a 404 in the same frame', async ({ page }) => {
  const res = await page.goto('/no-such-page');
  expect(res.status()).toBe(404);
  await expect(page.locator('h1')).toHaveText('Page not found');
  await expect(page.locator('.site-header .brand')).toBeVisible();
});
