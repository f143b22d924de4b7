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
  // No sixth try: Run is disabled, and the prompt stays.
  await expect(page.locator('button.run')).toBeDisabled();
  await expect(quota).toHaveAttribute('data-remaining', '0');
  await page.reload();
  await expect(page.locator('[data-testid=quota]')).toContainText('You have used today\'s 5 guest runs');
  await page.screenshot({ path: 'screenshots/quota-used.png' });
});

test('runs used up elsewhere: the refused Run shows none left, when they reset, and Run is disabled', async ({ page }) => {
  await openEditor(page);
  const quota = page.locator('[data-testid=quota]');
  await expect(quota).toContainText('5 of 5 guest runs left today');
  // The same guest (cookie and address) spends the day's runs through the API, one
  // after the other (each waited for: at most two may be in flight).
  for (let i = 0; i < 5; i++) {
    const r = await page.request.post('/api/v1/runs?wait=true', { data: { language: 'python', code: 'pass' } });
    expect(r.status()).toBe(200);
  }
  // The page still says 5; its Run is refused, and the note follows the refusal.
  await expect(quota).toContainText('5 of 5 guest runs left today');
  await page.click('button.run');
  await expect(quota).toHaveAttribute('data-remaining', '0');
  await expect(quota).toContainText("You have used today's 5 guest runs (they reset in");
  await expect(page.locator('button.run')).toBeDisabled();
  // Greyed, not the busy look of a run going on.
  await expect(page.locator('button.run')).toHaveClass(/\bheld\b/);
  await expect(page.locator('.status-line [data-verdict]')).toHaveCount(0);
  await page.screenshot({ path: 'screenshots/quota-refused.png' });
});
