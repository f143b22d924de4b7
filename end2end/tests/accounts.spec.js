// Register, log out, log in, see who is signed in, log out: with and without JavaScript.
const { test, expect, freshName, register, hydrated } = require('./helpers');

async function logOut(page) {
  await page.click('.site-header .logout-form button');
  await expect(page.locator('.site-header a[href="/login"]')).toBeVisible();
  await expect(page.locator('.site-header .user')).toHaveCount(0);
}

async function logIn(page, username, password, js) {
  await page.goto('/login');
  if (js) await hydrated(page);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('form button[type=submit]');
  await expect(page.locator('.site-header .user')).toContainText(username);
}

for (const js of [true, false]) {
  test.describe(js ? 'with JavaScript' : 'without JavaScript', () => {
    test.use({ javaScriptEnabled: js });

    test('register, log out, log in, log out again', async ({ page }) => {
      const name = freshName(js ? 'js' : 'nojs');
      await register(page, name, { js });
      await logOut(page);
      // A wrong password is refused with a message, on the same page.
      await page.goto('/login');
      if (js) await hydrated(page);
      await page.fill('#username', name);
      await page.fill('#password', 'not the password');
      await page.click('form button[type=submit]');
      await expect(page.locator('#form-error')).toHaveText('The username or password is not correct.');
      if (js) await page.screenshot({ path: 'screenshots/login-error.png' });
      await logIn(page, name, 'correct horse battery', js);
      await logOut(page);
    });

    test('history sends a guest to log in, and back after it', async ({ page }) => {
      const name = freshName(js ? 'back' : 'backnojs');
      await register(page, name, { js });
      await logOut(page);
      await page.goto('/history');
      await expect(page).toHaveURL(/\/login\?next=/);
      if (js) await hydrated(page);
      await page.fill('#username', name);
      await page.fill('#password', 'correct horse battery');
      await page.click('form button[type=submit]');
      await expect(page).toHaveURL(/\/history$/);
      await expect(page.locator('h1')).toHaveText('History');
    });
  });
}

test('register checks the fields as you type', async ({ page }) => {
  await page.goto('/register');
  await expect(page.locator('body[data-hydrated=true]')).toBeAttached();
  await page.fill('#username', 'ab');
  await page.locator('#username').blur();
  await expect(page.locator('#username-error')).toHaveText('Choose a username of at least 3 characters.');
  await page.fill('#password', 'short');
  await page.locator('#password').blur();
  await expect(page.locator('#password-error')).toHaveText('Passwords need at least 8 characters.');
  await page.fill('#username', freshName('typed'));
  await expect(page.locator('#username-error')).toBeHidden();
  await page.screenshot({ path: 'screenshots/register.png' });
});
