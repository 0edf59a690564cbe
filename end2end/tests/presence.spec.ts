import * as path from "node:path";
import { request, type APIRequestContext, type Page } from "@playwright/test";
import {
  expect,
  fence,
  notice,
  online,
  POLL_401,
  REREAD_401,
  test,
  uniqueName,
  unexpected,
} from "./helpers";

const SCREENSHOTS = path.join(__dirname, "..", "screenshots");

/** The join line of a page that counts people ("5 people joined") and names `name` on hover. */
function crowdLine(page: Page, name: string) {
  return page.locator(
    `[data-testid="messages"] [data-testid="message"][data-kind="join"][title*="${name}"]`,
  );
}

/** Logs `name` in through the API (no browser), in a context of its own. */
async function apiLogin(baseURL: string, name: string): Promise<APIRequestContext> {
  const api = await request.newContext({ baseURL, maxRedirects: 0 });
  const response = await api.post("/api/login", { form: { username: name } });
  expect(response.status(), `login ${name}`).toBeLessThan(400);
  return api;
}

test.describe("presence", () => {
  test("a crowd arriving at once shows as one line, and everyone is listed", async ({
    openUser,
    baseURL,
  }) => {
    const watcher = await openUser("watch");
    // The watcher's own join went out first (it is in no one's crowd).
    await expect(notice(watcher.page, "join", watcher.name)).toHaveCount(1);
    const names = Array.from({ length: 5 }, (_, i) => uniqueName(`crowd${i}`));
    // All at once, as after a restart or at the start of an event: the
    // logins fall into one presence window.
    const sessions = await Promise.all(names.map((name) => apiLogin(baseURL!, name)));
    const crowd = crowdLine(watcher.page, names[0]);
    await expect(crowd).toHaveCount(1);
    await expect(crowd).toContainText("5 people joined");
    for (const name of names) await expect(crowd).toHaveAttribute("title", new RegExp(name));
    for (const name of names) {
      await expect(online(watcher.page, name)).toHaveCount(1);
      // Counted in the crowd's line, not a line each.
      await expect(notice(watcher.page, "join", name)).toHaveCount(0);
    }
    await crowd.scrollIntoViewIfNeeded();
    await watcher.page.screenshot({
      path: path.join(SCREENSHOTS, "presence-crowd.png"),
      animations: "disabled",
    });
    for (const api of sessions) {
      await api.post("/api/logout");
      await api.dispose();
    }
    expect(unexpected(watcher.errors)).toEqual([]);
  });

  test("a crowd over the cap is counted, and the list still ends exact", async ({
    openUser,
    baseURL,
  }) => {
    const watcher = await openUser("watch");
    await expect(notice(watcher.page, "join", watcher.name)).toHaveCount(1);
    // More than one presence message lists (32): the page reads the list again.
    const names = Array.from({ length: 40 }, (_, i) => uniqueName(`many${i}`));
    const sessions = await Promise.all(names.map((name) => apiLogin(baseURL!, name)));
    for (const name of names) await expect(online(watcher.page, name)).toHaveCount(1);
    // A line names only the first 32 of its window; the logins race, so
    // which ones (names[0] may be among those only counted) is not fixed.
    const counted = watcher.page.locator(
      `[data-testid="messages"] [data-testid="message"][data-kind="join"][title*="many"]`,
      { hasText: "people joined" },
    );
    await expect(counted.first()).toBeVisible();
    for (const api of sessions) {
      await api.post("/api/logout");
      await api.dispose();
    }
    for (const name of names) await expect(online(watcher.page, name)).toHaveCount(0);
    expect(unexpected(watcher.errors)).toEqual([]);
  });

  test("a few arriving at once are named on one line", async ({ openUser, baseURL }) => {
    const watcher = await openUser("watch");
    // The watcher's own join went out first (it is in no one's crowd).
    await expect(notice(watcher.page, "join", watcher.name)).toHaveCount(1);
    const names = [uniqueName("ada"), uniqueName("bo")];
    const sessions = await Promise.all(names.map((name) => apiLogin(baseURL!, name)));
    const line = notice(watcher.page, "join", names[0]);
    await expect(line).toHaveCount(1);
    // In the order they arrived, which the two parallel logins do not fix.
    const [x, y] = names;
    await expect(line).toContainText(new RegExp(`^(${x} and ${y}|${y} and ${x}) joined`));
    for (const api of sessions) {
      await api.post("/api/logout");
      await api.dispose();
    }
    // Both leave within one window too: one line for both. Someone else
    // may leave in the same window (an earlier test's page, reaped as
    // idle), so the line names both, and perhaps more.
    const left = notice(watcher.page, "leave", names[0]);
    await expect(left).toHaveCount(1);
    await expect(left).toContainText(y);
    await expect(left).toContainText(/ left/);
    await expect(online(watcher.page, names[0])).toHaveCount(0);
    await expect(online(watcher.page, names[1])).toHaveCount(0);
  });

  test("logging out and back in under the same name shows no left or joined line", async ({
    openUser,
  }) => {
    const watcher = await openUser("watch");
    const bo = await openUser("bo");
    await expect(notice(watcher.page, "join", bo.name)).toHaveCount(1);
    await expect(online(watcher.page, bo.name)).toHaveCount(1);
    // Out and in again at once (a new session, a new public token), with
    // the browser's own cookie.
    const api = bo.page.request;
    expect((await api.post("/api/logout")).ok()).toBe(true);
    const again = await api.post("/api/login", { form: { username: bo.name }, maxRedirects: 0 });
    expect(again.status()).toBeLessThan(400);
    // Bo's page now holds the new session: reload it to chat again.
    await bo.page.reload();
    await expect(bo.page.getByTestId("status")).toHaveAttribute("data-status", "connected");
    await fence(bo, [watcher]);
    await expect(notice(watcher.page, "leave", bo.name)).toHaveCount(0);
    await expect(notice(watcher.page, "join", bo.name)).toHaveCount(1);
    await expect(online(watcher.page, bo.name)).toHaveCount(1);
    expect(unexpected(watcher.errors)).toEqual([]);
    expect(unexpected(bo.errors, POLL_401, REREAD_401)).toEqual([]);
  });
});
