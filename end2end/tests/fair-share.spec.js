// A caller at the in-flight cap is told why the Run button did nothing, in the API's words.
const { test, expect, openEditor, setCode } = require('./helpers');

const LONG = 'import time\nwhile True: time.sleep(1)';

test('at the cap of runs in flight, the editor says so', async ({ page }) => {
  await openEditor(page);
  // Two long runs through the API, as the same guest (cookie and address) as the page.
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const r = await page.request.post('/api/v1/runs', { data: { language: 'python', code: LONG } });
    expect(r.status()).toBe(202);
    ids.push((await r.json()).id);
  }
  try {
    await setCode(page, "print('one more')\n");
    await page.click('button.run');
    const message = page.locator('.status-line .status-message');
    await expect(message).toContainText('You already have 2 runs of yours queued or running');
    await expect(message).toContainText('Wait for one to finish');
    await expect(page.locator('.status-line [data-verdict]')).toHaveCount(0);
    await page.screenshot({ path: 'screenshots/too-many-runs.png' });
  } finally {
    for (const id of ids) await page.request.post(`/api/v1/runs/${id}/stop`);
  }
});
