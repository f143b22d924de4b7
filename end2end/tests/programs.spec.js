// Programs of several files in the editor: add a file, run, see both files' work; the
// draft keeps the files, arguments and limits across a reload; a saved run reopens
// with its files.
const { test, expect, openEditor, setCode, register, freshName } = require('./helpers');

// Adds a file through the Options panel, typing `name` into the new tab's name field.
async function addFile(page, name) {
  const toggle = page.locator('button.options-toggle');
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await page.click('button.add-file');
  const field = page.locator('.file-tab.editing input.file-name-input');
  await expect(field).toBeFocused();
  await expect(field).toHaveValue('helper.py');
  await field.fill(name);
  await field.press('Enter');
  await expect(page.locator('.file-tab.active .tab-name')).toHaveText(name);
}

async function twoFiles(page) {
  await openEditor(page);
  await setCode(page, 'import sys\nfrom helper import greet\nprint("main says", greet(), sys.argv[1:])\n');
  await addFile(page, 'helper.py');
  await setCode(page, 'def greet():\n    return "helper says hi"\n');
  await page.fill('#args', "one 'two words'");
  await expect(page.locator('.chips .chip')).toHaveText(['one', 'two words']);
}

test('a second file: run, and both files took part', async ({ page }) => {
  await twoFiles(page);
  // The first file stays the entry (marked), whichever tab is on screen.
  await expect(page.locator('.file-tab.entry .tab-name')).toContainText('main.py');
  await page.click('button.run');
  await expect(page.locator('pre.stdout')).toHaveText("main says helper says hi ['one', 'two words']\n", { timeout: 30_000 });
  await expect(page.locator('.status-line [data-verdict=ok]')).toHaveText('OK');
});

test('a reload keeps the files, the arguments and the limits', async ({ page }) => {
  await twoFiles(page);
  await page.fill('#time-limit', '2000');
  await page.reload();
  await expect(page.locator('.cm-host.mounted .cm-content')).toBeVisible();
  await expect(page.locator('.file-tab .tab-name')).toHaveText([/main\.py/, 'helper.py']);
  // It opens on the entry file; the other is one tab away, with its text.
  await expect(page.locator('.cm-content')).toContainText('from helper import greet');
  await expect(page.locator('#args')).toHaveValue("one 'two words'");
  await expect(page.locator('#time-limit')).toHaveValue('2000');
  await page.locator('.file-tab .tab-name', { hasText: 'helper.py' }).click();
  await expect(page.locator('.cm-content')).toContainText('helper says hi');
});

test('a time limit chosen in the options stops a long program', async ({ page }) => {
  await openEditor(page);
  await setCode(page, 'import time\ntime.sleep(3)\nprint("woke")\n');
  await page.click('button.options-toggle');
  await page.fill('#time-limit', '1000');
  await page.click('button.run');
  await expect(page.locator('.status-line [data-verdict=time_limit]')).toHaveText('Time limit', { timeout: 30_000 });
});

test('a saved run reopens in the editor with its files', async ({ page }) => {
  await register(page, freshName('files'));
  await twoFiles(page);
  await page.click('button.run');
  await expect(page.locator('.status-line [data-verdict=ok]')).toBeVisible({ timeout: 30_000 });
  await page.goto('/history');
  // The list shows the entry file's first line.
  await expect(page.locator('[data-testid=history-row] .first-line').first()).toHaveText('import sys');
  const href = await page.locator('[data-testid=history-row]').first().getAttribute('href');
  const id = href.split('/').pop();
  // The run page shows what made the run.
  await page.goto(`/runs/${id}`);
  await expect(page.locator('.program [data-file="helper.py"]')).toContainText('helper says hi');
  await expect(page.locator('.program .args')).toContainText("one 'two words'");
  await page.click('text=Open in editor');
  await expect(page.locator('.cm-host.mounted .cm-content')).toContainText('from helper import greet');
  await expect(page.locator('.file-tab .tab-name')).toHaveText([/main\.py/, 'helper.py']);
  await expect(page.locator('#args')).toHaveValue("one 'two words'");
});

test('a file is renamed in its tab: Enter confirms, Escape cancels, a bad name says why', async ({ page }) => {
  await twoFiles(page);
  const tab = page.locator('.file-tab.active');
  await expect(tab.locator('.tab-name')).toHaveText('helper.py');
  // From the keyboard: the rename button, then the field in the tab.
  await tab.locator('button.rename').focus();
  await page.keyboard.press('Enter');
  const field = page.locator('.file-tab.editing input.file-name-input');
  await expect(field).toBeFocused();
  await expect(field).toHaveValue('helper.py');
  await field.fill('bad name!.py');
  await field.press('Enter');
  await expect(page.locator('.name-error')).toContainText('cannot be a file name');
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await field.press('Escape');
  await expect(page.locator('.file-tab .tab-name')).toHaveText([/main\.py/, 'helper.py']);
  await page.locator('.file-tab .tab-name', { hasText: 'helper.py' }).dblclick();
  await field.fill('greeting.py');
  await field.press('Enter');
  await expect(page.locator('.file-tab .tab-name')).toHaveText([/main\.py/, 'greeting.py']);
  await page.screenshot({ path: 'screenshots/file-tabs.png' });
});
