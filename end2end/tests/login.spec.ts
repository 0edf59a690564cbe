import {
  NAME_IN_USE,
  collectConsoleErrors,
  disableBrowserValidation,
  expect,
  expectPath,
  gotoLogin,
  login,
  submitLogin,
  test,
  refused,
  unexpected,
  uniqueName,
  waitHydrated,
} from "./helpers";

test.describe("login page", () => {
  test("hydrates without console errors", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    await gotoLogin(page);

    await expect(page.locator("form")).toBeVisible();
    await expect(page.locator('label[for="username"]')).toBeVisible();
    await expect(page.locator("#username")).toHaveAttribute("name", "username");
    await expect(page.getByTestId("login-submit")).toHaveAttribute("type", "submit");
    await expect(page.getByTestId("login-error")).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test("logs in and shows the user's name", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    const name = uniqueName("login");
    await login(page, name); // asserts /chat, hydration and [data-testid=me]

    await expect(page.getByTestId("me")).toHaveText(name);
    await expect(page.getByTestId("logout")).toBeVisible();
    await expect(page.getByTestId("composer")).toBeVisible();
    expect(errors).toEqual([]);
  });

  test("rejects an empty name and a name of 33 characters", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    const error = page.getByTestId("login-error");

    // Each case on a freshly loaded page, so a stale error cannot pass for a new one.
    for (const bad of ["", uniqueName("x").padEnd(33, "x")]) {
      await gotoLogin(page);
      // Test the app's own validation, not the browser's `required`/`maxlength`.
      await disableBrowserValidation(page.locator("#username"));
      await expect(error).toHaveCount(0);

      await submitLogin(page, bad);
      await expect(error).toBeVisible();
      await expect(error).toHaveAttribute("role", "alert");
      await expect(error).not.toHaveText("");
      await expect(error).not.toHaveText(NAME_IN_USE);
      await expectPath(page, "/");
    }

    // The page stays usable: a valid name still gets in.
    const name = uniqueName("valid");
    await submitLogin(page, name);
    await expectPath(page, "/chat");
    await waitHydrated(page);
    await expect(page.getByTestId("me")).toHaveText(name);
    // Only the two refusals themselves (400) may show in the console.
    expect(unexpected(errors, refused("login", 400))).toEqual([]);
    expect(errors.length).toBeLessThanOrEqual(2);
  });

  test("rejects a name that is already logged in", async ({ page, browser, baseURL }) => {
    const errors = collectConsoleErrors(page);
    const name = uniqueName("dup");
    await login(page, name);

    // Same name from a second browser (own cookies, so not the same session).
    const other = await browser.newContext({ baseURL });
    try {
      const page2 = await other.newPage();
      const errors2 = collectConsoleErrors(page2);
      await gotoLogin(page2);
      await submitLogin(page2, name);

      await expect(page2.getByTestId("login-error")).toHaveText(NAME_IN_USE);
      await expectPath(page2, "/");
      // Only the refusal itself (409 Conflict) may show in the console.
      expect(unexpected(errors2, refused("login", 409))).toEqual([]);
    } finally {
      await other.close();
    }

    // The first session is untouched.
    await expect(page.getByTestId("me")).toHaveText(name);
    expect(errors).toEqual([]);
  });

  test("works without JavaScript", async ({ browser, baseURL }) => {
    // Progressive enhancement: the form posts and the server redirects.
    const context = await browser.newContext({ baseURL, javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      const errors = collectConsoleErrors(page);
      const name = uniqueName("nojs");
      await page.goto("/");
      await submitLogin(page, name);

      await expectPath(page, "/chat");
      // Server-rendered, never hydrated.
      await expect(page.getByTestId("me")).toHaveText(name);
      await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

test("visiting /chat without a session leads to the login page", async ({ page }) => {
  // A fresh context per test: no session cookie.
  const errors = collectConsoleErrors(page);
  await page.goto("/chat");

  await expectPath(page, "/");
  await waitHydrated(page);
  await expect(page.locator("#username")).toBeVisible();
  expect(errors).toEqual([]);
});
