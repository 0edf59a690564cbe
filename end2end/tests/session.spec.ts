import {
  POLL_401,
  REREAD_401,
  expect,
  expectPath,
  logout,
  notice,
  test,
  unexpected,
  waitHydrated,
} from "./helpers";

/** Is `url` the long poll (`POST /comet`, all of the page's rooms)? */
const isLongPoll = (url: URL) => url.pathname === "/comet";

test.describe("session", () => {
  test("logout ends the session for good", async ({ openUser }) => {
    const a = await openUser("leaver");
    const watcher = await openUser("watcher");
    const { context, page } = a;

    const cookie = (await context.cookies()).find((c) => c.name === "comet_token");
    expect(cookie, "session cookie comet_token").toBeDefined();
    expect(cookie!.httpOnly).toBe(true);

    await logout(page);
    await expect(page.locator("#username")).toBeVisible();
    // The others see them go.
    await expect(notice(watcher.page, "leave", a.name)).toBeVisible();

    // No way back into the chat...
    await page.goto("/chat");
    await expectPath(page, "/");
    await waitHydrated(page);

    // ...not even with the old token, in case the server only cleared the cookie.
    await context.addCookies([cookie!]);
    const res = await page.request.post("/comet/chat", { data: { since: null } });
    expect(res.status()).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unknown_client" });

    await page.goto("/chat");
    await expectPath(page, "/");
    await waitHydrated(page);

    // A 401 on the poll, or on the online list's re-read, still in flight
    // when logging out is fine.
    expect(unexpected(a.errors, POLL_401, REREAD_401)).toEqual([]);
    expect(watcher.errors).toEqual([]);
  });

  test("a client removed as idle is told its session ended", async ({ openUser }) => {
    // Up to ~3 s for the last poll, 7 s blocked, up to 30 s to notice, plus login.
    test.setTimeout(90_000);
    const { page, errors } = await openUser("idle");

    // Cut the long poll off in the browser, so the server stops hearing from
    // this client. The poll already in flight is not affected: it ends within
    // the 2 s poll timeout, and the client's next try is the first one aborted.
    let firstAbort!: () => void;
    const aborting = new Promise<void>((resolve) => (firstAbort = resolve));
    await page.route(isLongPoll, (route) => {
      firstAbort();
      return route.abort();
    });
    await aborting;

    // From now on the server sees no poll: 4 s idle timeout + 1 s reaper
    // period, with margin.
    await page.waitForTimeout(7_000);
    await page.unroute(isLongPoll);

    // The next poll (after a back-off of at most ~5 s) gets a 401.
    const ended = page.getByTestId("session-ended");
    await expect(ended).toBeVisible({ timeout: 30_000 });
    await expect(ended).toHaveAttribute("role", "alert");
    await expect(page.getByTestId("status")).toHaveAttribute("data-status", "ended");

    const back = ended.locator('a[href="/"]');
    await expect(back).toBeVisible();
    await back.click();
    await expectPath(page, "/");
    await waitHydrated(page);

    // Expected here: Chromium's "net::ERR_FAILED" for each aborted fetch, and
    // the 401 that told the page its session was gone.
    expect(unexpected(errors, /net::ERR_FAILED/, POLL_401)).toEqual([]);
  });
});
