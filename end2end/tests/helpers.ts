/**
 * Shared helpers for the Comet Chat browser tests.
 *
 * The UI contract these rely on (implemented by the Rust/Leptos app):
 * - `<body data-hydrated="true">` once the WASM has hydrated;
 * - login page `/`: `#username`, `[data-testid=login-submit]`, `[data-testid=login-error]`;
 * - chat page `/chat`: `[data-testid=me|logout|status|messages|message|composer|send|send-error|session-ended]`.
 */
import {
  test as base,
  expect,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Locator,
  type Page,
} from "@playwright/test";

/** The exact text the app shows when a name is taken. */
export const NAME_IN_USE = "User is already logged into the chat application.";

/**
 * A user name that no other test (or earlier run against the same server)
 * uses: `prefix-<time><random>`, at most 32 characters of [A-Za-z0-9_-].
 */
export function uniqueName(prefix: string): string {
  const suffix = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
  const clean = prefix.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 32 - suffix.length - 1);
  return `${clean || "u"}-${suffix}`;
}

/** A random token to mark the messages of one test (messages are global too). */
export function token(): string {
  return Math.random().toString(36).slice(2, 8);
}

/** A RegExp matching exactly `text` (after Playwright's whitespace trimming). */
export function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

/** Waits until the WASM bundle has hydrated the current page. */
export async function waitHydrated(page: Page): Promise<void> {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Waits until the page's path (ignoring origin and query) is `path`. */
export async function expectPath(page: Page, path: string): Promise<void> {
  await expect.poll(() => new URL(page.url()).pathname, { message: `path of ${page.url()}` }).toBe(path);
}

/**
 * Records `console.error` messages and uncaught page errors.
 *
 * Attach it before the first `goto` and assert at the end with
 * `expect(errors).toEqual([])`. Each entry is `"<kind>: <text> (<url>)"`, where
 * the URL is the script or, for network errors Chromium logs itself such as
 * "Failed to load resource: …", the requested resource, so a test can filter
 * out errors it provokes on purpose.
 */
export function collectConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const url = msg.location().url;
      errors.push(`console.error: ${msg.text()}${url ? ` (${url})` : ""}`);
    }
  });
  page.on("pageerror", (err) => {
    errors.push(`pageerror: ${err.name}: ${err.message}`);
  });
  return errors;
}

/**
 * Chromium logs every HTTP error response as a console error of its own. A
 * long poll answered 401 is the contract's way to say "session gone", so it is
 * expected right after a logout or an idle removal.
 */
export const POLL_401 = /status of 401.*\/comet\b/;

/**
 * The online list's re-read (after a crowd's presence message), when it
 * was already on its way as the user logged out.
 */
export const REREAD_401 = /status of 401.*\/api\/online_users/;

/**
 * A server function refusing bad input answers 4xx with the user-facing
 * message; Chromium logs the status as a console error of its own.
 */
export function refused(endpoint: string, status: number): RegExp {
  return new RegExp(`status of ${status}\\b.*\\/api\\/${endpoint}\\)`);
}

/** `errors` without those matching one of `expected`. */
export function unexpected(errors: string[], ...expected: RegExp[]): string[] {
  return errors.filter((e) => !expected.some((re) => re.test(e)));
}

/** Opens the login page and waits for hydration. */
export async function gotoLogin(page: Page): Promise<void> {
  await page.goto("/");
  await waitHydrated(page);
}

/** Fills in and submits the login form (the page must already show it). */
export async function submitLogin(page: Page, name: string): Promise<void> {
  await page.locator("#username").fill(name);
  await page.getByTestId("login-submit").click();
}

/** Logs in as `name` from the login page and waits for the hydrated chat page. */
export async function login(page: Page, name: string): Promise<void> {
  await gotoLogin(page);
  await submitLogin(page, name);
  await expectPath(page, "/chat");
  await waitHydrated(page);
  await expect(page.getByTestId("me")).toHaveText(name);
}

/** Logs in as `preferred`, or as a unique variant if that name is in use. Returns the name used. */
export async function loginPreferring(page: Page, preferred: string): Promise<string> {
  await gotoLogin(page);
  await submitLogin(page, preferred);
  const error = page.getByTestId("login-error");
  await expect
    .poll(async () => new URL(page.url()).pathname === "/chat" || (await error.isVisible()))
    .toBe(true);
  if (new URL(page.url()).pathname === "/chat") {
    await waitHydrated(page);
    return preferred;
  }
  await expect(error).toHaveText(NAME_IN_USE);
  const name = uniqueName(preferred);
  await login(page, name);
  return name;
}

/** Clicks the logout button and waits for the login page. */
export async function logout(page: Page): Promise<void> {
  await page.getByTestId("logout").click();
  await expectPath(page, "/");
  await waitHydrated(page);
}

/** Waits until the long poll reports the page as connected. */
export async function waitConnected(page: Page): Promise<void> {
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "connected");
}

/**
 * Lets a test submit values the browser itself would refuse (`required`,
 * `maxlength` on the field, constraint validation of its form), so that the
 * app's own validation is what gets tested, whether or not the markup also
 * carries those attributes.
 */
export async function disableBrowserValidation(field: Locator): Promise<void> {
  await field.evaluate((el) => {
    el.removeAttribute("required");
    el.removeAttribute("maxlength");
    el.closest("form")?.setAttribute("novalidate", "");
  });
}

// ---------------------------------------------------------------------------
// Chat page

/** All chat items (not join/leave notices) of a page. */
export function chatMessages(page: Page): Locator {
  return page.locator('[data-testid="messages"] [data-testid="message"][data-kind="chat"]');
}

/** The join (or leave) notice(s) about `name`. */
export function notice(page: Page, kind: "join" | "leave", name: string): Locator {
  return page
    .locator(`[data-testid="messages"] [data-testid="message"][data-kind="${kind}"]`)
    .filter({ hasText: name });
}

/** The entry for `name` in a page's online list. */
export function online(page: Page, name: string): Locator {
  return page.locator(`[data-testid="online-user"][data-name="${name}"]`);
}

/** The chat item(s) sent by `name`. */
export function messagesFrom(page: Page, name: string): Locator {
  return chatMessages(page).filter({ has: page.locator(".from", { hasText: exactly(name) }) });
}

/** The chat item(s) whose text contains `text`. */
export function messageWithText(page: Page, text: string): Locator {
  return chatMessages(page).filter({ has: page.locator(".text", { hasText: text }) });
}

/** Types `text` into the composer, sends it with Enter and waits for the composer to clear. */
export async function sendWithEnter(page: Page, text: string): Promise<void> {
  const composer = page.getByTestId("composer");
  await composer.fill(text);
  await composer.press("Enter");
  await expect(composer).toHaveValue("");
}

/** Like {@link sendWithEnter}, but with the Send button. */
export async function sendWithButton(page: Page, text: string): Promise<void> {
  const composer = page.getByTestId("composer");
  await composer.fill(text);
  await page.getByTestId("send").click();
  await expect(composer).toHaveValue("");
}

/** Sends a public message from `from` and waits until every page in `to` shows it. */
export async function fence(from: ChatUser, to: ChatUser[]): Promise<void> {
  const text = `fence ${token()}`;
  await sendWithEnter(from.page, text);
  for (const user of [from, ...to]) await expect(messageWithText(user.page, text)).toHaveCount(1);
}

// ---------------------------------------------------------------------------
// Fixture: one browser context per chat user

/** A user in their own browser context (own cookies, so their own session). */
export interface ChatUser {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console errors of `page`, see {@link collectConsoleErrors}. */
  errors: string[];
}

export interface OpenUserOptions {
  /** Exact name to log in with (default: `uniqueName(prefix)`). */
  name?: string;
  /** Extra options for the new browser context (viewport, javaScriptEnabled, …). */
  contextOptions?: BrowserContextOptions;
  /** Log in (default) or only open the context and page. */
  login?: boolean;
}

/** Opens a fresh context and page (console errors recorded), without logging in. */
export async function openContext(
  browser: Browser,
  baseURL: string | undefined,
  contextOptions: BrowserContextOptions = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ baseURL, ...contextOptions });
  const page = await context.newPage();
  const errors = collectConsoleErrors(page);
  return { context, page, errors };
}

export const test = base.extend<{
  /**
   * Opens a new browser context for a user, logs them in as
   * `uniqueName(prefix)` (unless told otherwise) and waits for the chat page
   * to be hydrated and connected. Contexts are closed after the test.
   */
  openUser: (prefix: string, options?: OpenUserOptions) => Promise<ChatUser>;
}>({
  openUser: async ({ browser, baseURL }, use) => {
    const contexts: BrowserContext[] = [];
    await use(async (prefix, options = {}) => {
      const { context, page, errors } = await openContext(browser, baseURL, options.contextOptions);
      contexts.push(context);
      const name = options.name ?? uniqueName(prefix);
      if (options.login ?? true) {
        await login(page, name);
        await waitConnected(page);
      }
      return { name, context, page, errors };
    });
    for (const context of contexts) await context.close();
  },
});

export { expect };
