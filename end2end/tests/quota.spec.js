// A guest sees the runs left go down, and an invitation to sign in after the last one.
const { test, expect, openEditor, setCode } = require('./helpers');

test('the guest count goes down and ends in a log-in prompt', async ({ page }) => {
  await openEditor(page);
  const quota = page.locator('[data-testid=quota]');
  await expect(quota).toContainText('5 of 5 guest runs left today');
  await setCode(page, "print('counted')\n");
  for (let left = 4; left >= 0; left--) {
    await page.click('button.run');
    await expect(page.locator('.status-line [data-verdict=ok]')).toBeVisible({ timeout: 15_000 });
    await expect(quota).toHaveAttribute('data-remaining', String(left));
    if (left > 0) await expect(quota).toContainText(`${left} of 5 guest runs left today`);
  }
  await expect(quota).toContainText('You have used today\'s 5 guest runs');
  await expect(quota.locator('a[href^="/login"]')).toBeVisible();
  await expect(quota.locator('a[href^="/register"]')).toBeVisible();
  // A sixth try does not run and the prompt stays.
  await page.click('button.run');
  await expect(quota).toHaveAttribute('data-remaining', '0');
  await page.reload();
  await expect(page.locator('[data-testid=quota]')).toContainText('You have used today\'s 5 guest runs');
  await page.screenshot({ path: 'screenshots/quota-used.png' });
});
