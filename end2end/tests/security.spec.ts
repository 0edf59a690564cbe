/**
 * The Content-Security-Policy holds in a real browser: each page's policy
 * (with its per-response nonce) lets the hydration script and the wasm
 * run, and nothing the app does at run time is blocked. A policy the page
 * breaks shows here as a `securitypolicyviolation` event or a console
 * error naming the Content Security Policy, or as a page that never
 * hydrates.
 */
import { type Page } from "@playwright/test";
import {
  collectConsoleErrors,
  expect,
  gotoLogin,
  login,
  messageWithText,
  sendWithButton,
  test,
  token,
  uniqueName,
} from "./helpers";

/** Records every CSP violation the page reports, from its first script on. */
async function collectViolations(page: Page): Promise<() => Promise<string[]>> {
  // Init scripts are injected by the browser, so the policy does not block them.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
    document.addEventListener("securitypolicyviolation", (e) => {
      seen.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  return () =>
    page.evaluate(() => (window as unknown as { __cspViolations?: string[] }).__cspViolations ?? []);
}

/** Console errors that mention the policy. */
function cspErrors(errors: string[]): string[] {
  return errors.filter((e) => /Content Security Policy/i.test(e));
}

test.describe("content security policy", () => {
  test("the login page sends a nonce policy and hydrates without a violation", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    const violations = await collectViolations(page);
    const response = await page.goto("/");
    const policy = (await response?.headerValue("content-security-policy")) ?? "";
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/_=-]+' 'wasm-unsafe-eval'/);
    expect(await response?.headerValue("x-content-type-options")).toBe("nosniff");

    await gotoLogin(page); // waits for data-hydrated="true"
    expect(await violations()).toEqual([]);
    expect(cspErrors(errors)).toEqual([]);
  });

  test("the chat page hydrates, polls and shows a new message without a violation", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    const violations = await collectViolations(page);
    const name = uniqueName("csp");
    await login(page, name); // hydrated chat page
    const text = `csp ${token()}`;
    await sendWithButton(page, text);
    // Rendered in the browser (from the poll), with the name's inline colour.
    await expect(messageWithText(page, text)).toBeVisible();
    expect(await violations()).toEqual([]);
    expect(cspErrors(errors)).toEqual([]);
  });
});
