// A signed-in user's runs are kept: listed newest first, opened, reopened in the editor,
// and deleted.
const { test, expect, openEditor, setCode, freshName, register } = require('./helpers');

test('log in, run two programs, browse, reopen one, delete the other', async ({ page }) => {
  await register(page, freshName('hist'));
  await openEditor(page);
  await setCode(page, "print('first program')\n");
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('first program\n', { timeout: 15_000 });

  await page.selectOption('#language', 'javascript');
  await setCode(page, "console.log('second program')\n");
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText('second program\n', { timeout: 15_000 });
  // Users have no daily count.
  await expect(page.locator('[data-testid=quota]')).toHaveCount(0);

  await page.click('.site-header a[href="/history"]');
  const rows = page.locator('[data-testid=history-row]');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('javascript');
  await expect(rows.nth(0)).toContainText("console.log('second program')");
  await expect(rows.nth(1)).toContainText('python');
  await expect(rows.nth(1)).toContainText("print('first program')");
  await page.screenshot({ path: 'screenshots/history.png' });

  // Open the Python run and take it back to the editor.
  await rows.nth(1).click();
  await expect(page).toHaveURL(/\/history\/[0-9a-f]{32}$/);
  await expect(page.locator('.output pre.stdout')).toHaveText('first program\n');
  await expect(page.locator('.saved-code .cm-host.mounted .cm-content')).toContainText("print('first program')");
  await page.screenshot({ path: 'screenshots/history-run.png' });
  await page.click('[data-testid=open-in-editor]');
  await expect(page.locator('.cm-host.mounted .cm-content')).toContainText("print('first program')");
  await expect(page.locator('#language')).toHaveValue('python');

  // Delete the JavaScript one, confirming the question.
  await page.goto('/history');
  await rows.nth(0).click();
  page.once('dialog', (d) => d.accept());
  await page.click('.delete-form button');
  await expect(page).toHaveURL(/\/history$/);
  await expect(rows).toHaveCount(1);
  await expect(rows.nth(0)).toContainText('python');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('Delete asks on the page first; Cancel keeps the run, then it goes', async ({ page }) => {
    await register(page, freshName('nojsdel'), { js: false });
    await page.goto('/');
    await page.fill('textarea#code', "print('delete me')\n");
    await page.click('button.run');
    await expect(page.locator('pre.stdout')).toHaveText('delete me\n');

    await page.goto('/history');
    const rows = page.locator('[data-testid=history-row]');
    await expect(rows).toHaveCount(1);
    await rows.nth(0).click();
    await expect(page).toHaveURL(/\/history\/[0-9a-f]{32}$/);
    const runPage = page.url();

    await page.click('.delete-form button');
    await expect(page).toHaveURL(/\?delete=1$/);
    const ask = page.locator('.confirm-box[role=alertdialog]');
    await expect(ask).toContainText('Delete this run from your history?');
    await page.screenshot({ path: 'screenshots/history-delete-confirm.png' });
    await ask.locator('a', { hasText: 'Cancel' }).click();
    await expect(page).toHaveURL(runPage);
    await expect(page.locator('.confirm-box')).toHaveCount(0);
    await page.goto('/history');
    await expect(rows).toHaveCount(1);

    await rows.nth(0).click();
    await page.click('.delete-form button');
    await page.click('.confirm-box button', { hasText: 'Delete for good' });
    await expect(page).toHaveURL(/\/history$/);
    await expect(rows).toHaveCount(0);
  });
});
