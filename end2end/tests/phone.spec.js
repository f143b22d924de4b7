// A 390-px-wide phone: the header and the control row fit without breaking a word, and
// the first screen shows the Run button and the start of the output (no scrolling past
// an empty editor). Screenshots for a person to look at: screenshots/phone-*.png.
const { test, expect, openEditor } = require('./helpers');

const PHONE = { width: 390, height: 844 };

// Every element's text sits on one line: its text boxes' tops are less than a line apart.
async function expectOneLine(locator) {
  for (const el of await locator.all()) {
    const spread = await el.evaluate((e) => {
      const range = document.createRange();
      range.selectNodeContents(e);
      const tops = [...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.top);
      return (Math.max(...tops) - Math.min(...tops)) / parseFloat(getComputedStyle(e).fontSize);
    });
    expect(spread, await el.textContent()).toBeLessThan(0.9);
  }
}

// The whole of `selector` shows on the first screen, above the status line that sticks
// to its bottom.
async function expectOnFirstScreen(page, selector) {
  const box = await page.locator(selector).first().boundingBox();
  const status = await page.locator('.status-bar').boundingBox();
  expect(box, selector).not.toBeNull();
  expect(box.y, `${selector} starts on the first screen`).toBeGreaterThanOrEqual(0);
  expect(box.y + box.height, `${selector} ends above the status line`).toBeLessThanOrEqual(Math.min(status.y, PHONE.height));
}

test.describe('phone', () => {
  test.use({ viewport: PHONE });

  test('Run and the output are on the first screen, and the header does not wrap', async ({ page }) => {
    await openEditor(page);
    await expectOneLine(page.locator('.site-header .brand, .site-header nav a'));
    await expectOneLine(page.locator('.editor-page > .toolbar .button'));
    const run = await page.locator('button.run').boundingBox();
    expect(run.y + run.height).toBeLessThanOrEqual(PHONE.height);
    await expectOnFirstScreen(page, '.side-pane .output');
    await page.screenshot({ path: 'screenshots/phone-editor.png' });

    await page.click('button.run');
    await expect(page.locator('pre.stdout')).toHaveText('Hello, world!\n', { timeout: 30_000 });
    await expectOnFirstScreen(page, 'pre.stdout');
    // The page did not scroll to get there.
    expect(await page.evaluate(() => window.scrollY)).toBe(0);
    await page.screenshot({ path: 'screenshots/phone-editor-ran.png' });
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });
    test('the form keeps Run and the output on the first screen', async ({ page }) => {
      await page.goto('/');
      const run = await page.locator('button.run').boundingBox();
      expect(run.y + run.height).toBeLessThanOrEqual(PHONE.height);
      await expectOnFirstScreen(page, '.side-pane .output');
      await page.screenshot({ path: 'screenshots/phone-editor-nojs.png' });
    });
  });
});
