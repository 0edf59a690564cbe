import {
  expect,
  fence,
  messageWithText,
  notice,
  online,
  POLL_401,
  sendWithEnter,
  test,
  token,
  unexpected,
  waitConnected,
  waitHydrated,
} from "./helpers";
import type { Page } from "@playwright/test";

/**
 * Waits until the count shown equals the entries listed (other tests' users
 * come and go on the same server, so the number itself is not fixed).
 */
async function expectCountMatchesList(page: Page): Promise<void> {
  await expect
    .poll(async () => {
      const shown = Number(await page.getByTestId("online-count").textContent());
      return shown === (await page.getByTestId("online-user").count()) && shown > 0;
    })
    .toBe(true);
}

/** A page's private lines containing `text`. */
function privateLine(page: Page, text: string) {
  return page
    .locator('[data-testid="message"][data-kind="private"]')
    .filter({ has: page.locator(".text", { hasText: text }) });
}

test.describe("who is online", () => {
  test("the list and its count follow joins live, and a reload drops nobody", async ({ openUser }) => {
    const a = await openUser("ann");
    await expect(online(a.page, a.name)).toContainText("(you)");
    await expectCountMatchesList(a.page);
    const b = await openUser("ben");
    await expect(online(a.page, b.name)).toBeVisible();
    await expectCountMatchesList(a.page);
    // The newcomer's page already lists both, from the server-rendered snapshot.
    await expect(online(b.page, a.name)).toBeVisible();
    await expect(online(b.page, b.name)).toContainText("(you)");

    await b.page.reload();
    await waitHydrated(b.page);
    await waitConnected(b.page);
    await fence(b, [a]);
    // Same session after the reload: no "left", no second "joined", still listed.
    await expect(notice(a.page, "leave", b.name)).toHaveCount(0);
    await expect(notice(a.page, "join", b.name)).toHaveCount(1);
    await expect(online(a.page, b.name)).toHaveCount(1);
    expect(unexpected(a.errors)).toEqual([]);
    expect(unexpected(b.errors)).toEqual([]);
  });

  test("someone who closes the tab leaves the list after the idle timeout", async ({ openUser }) => {
    const a = await openUser("amy");
    const b = await openUser("bea");
    await expect(online(a.page, b.name)).toBeVisible();
    await b.context.close();
    // The server runs the tests with a 4 s idle timeout, reaped every second.
    await expect(online(a.page, b.name)).toHaveCount(0, { timeout: 15_000 });
    await expect(notice(a.page, "leave", b.name)).toHaveCount(1);
    await expectCountMatchesList(a.page);
    expect(unexpected(a.errors)).toEqual([]);
  });
});

test.describe("private messages", () => {
  test("reach only their target, marked private on both sides", async ({ openUser }) => {
    const a = await openUser("pat");
    const b = await openUser("quinn");
    const c = await openUser("rob");
    await expect(online(a.page, b.name)).toBeVisible();

    await online(a.page, b.name).getByRole("button").click();
    await expect(a.page.getByTestId("private-to")).toContainText(`Private message to ${b.name}`);
    await expect(a.page.getByTestId("composer")).toBeFocused();
    const secret = `just between us ${token()}`;
    await sendWithEnter(a.page, secret);

    for (const [page, who] of [
      [a.page, "sender"],
      [b.page, "target"],
    ] as const) {
      const line = privateLine(page, secret);
      await expect(line, who).toHaveCount(1);
      await expect(line.getByTestId("private-badge")).toHaveText("private");
      await expect(line.locator(".from")).toHaveText(a.name);
      await expect(line.getByTestId("private-to-name")).toContainText(b.name);
    }
    await expect(privateLine(a.page, secret)).toHaveAttribute("data-mine", "true");

    // The third user got a later public message but never the private one.
    await fence(b, [a, c]);
    await expect(c.page.getByText(secret)).toHaveCount(0);

    // Back to everyone: the next message is public again.
    await a.page.getByTestId("cancel-private").click();
    await expect(a.page.getByTestId("private-to")).toHaveCount(0);
    const open = `for everyone ${token()}`;
    await sendWithEnter(a.page, open);
    await expect(messageWithText(c.page, open)).toHaveCount(1);

    // No page ever carries a private token (they are 64 hex digits).
    for (const user of [a, b, c]) {
      expect(await user.page.content()).not.toMatch(/\b[0-9a-f]{64}\b/);
      expect(unexpected(user.errors)).toEqual([]);
    }
  });
});

test.describe("sending", () => {
  test("a send retried after its answer was lost shows once", async ({ openUser }) => {
    const a = await openUser("sam");
    const b = await openUser("tia");
    const text = `only once ${token()}`;
    // The first attempt reaches the server, but its answer never comes back.
    let first = true;
    await a.page.route("**/api/send_message", async (route) => {
      if (first) {
        first = false;
        await route.fetch();
        await route.abort("connectionreset");
      } else {
        await route.continue();
      }
    });
    const composer = a.page.getByTestId("composer");
    await composer.fill(text);
    await composer.press("Enter");
    await expect(a.page.getByTestId("send-error")).toContainText("Could not reach the server");
    await expect(composer).toHaveValue(text);
    // The user tries again: same send, so the server does not send it twice.
    await a.page.getByTestId("send").click();
    await expect(composer).toHaveValue("");
    await expect(a.page.getByTestId("send-error")).toHaveCount(0);
    await fence(b, [a]);
    await expect(messageWithText(a.page, text)).toHaveCount(1);
    await expect(messageWithText(b.page, text)).toHaveCount(1);
    expect(unexpected(a.errors, /send_message/)).toEqual([]);
  });

  test("sending too fast says to slow down, and sending works again after a pause", async ({ openUser }) => {
    // The test server allows a burst of 40 sends, then 2 per second, per
    // client address. This page says it is another address (the test
    // server trusts 127.0.0.1 as a proxy), so the bucket it empties is its
    // own and not the one every other test sends from.
    const a = await openUser("zed", {
      contextOptions: { extraHTTPHeaders: { "X-Forwarded-For": "192.0.2.40" } },
    });
    const composer = a.page.getByTestId("composer");
    const error = a.page.getByTestId("send-error");
    let sent = 0;
    for (; sent < 80 && !(await error.isVisible()); sent++) {
      await composer.fill(`flood ${sent}`);
      await composer.press("Enter");
      await expect
        .poll(async () => (await composer.inputValue()) === "" || (await error.isVisible()))
        .toBe(true);
    }
    await expect(error).toHaveText("You are sending messages too fast. Please slow down.");
    expect(sent).toBeGreaterThanOrEqual(40);
    // What was refused stays in the box; after a pause it goes out.
    await expect(composer).not.toHaveValue("");
    await a.page.waitForTimeout(1_200);
    await a.page.getByTestId("send").click();
    await expect(composer).toHaveValue("");
    await expect(error).toHaveCount(0);
    expect(unexpected(a.errors, /status of 429/)).toEqual([]);
  });

  test("a message sent between the page's render and its first poll shows once", async ({
    openUser,
  }) => {
    const a = await openUser("uma");
    const b = await openUser("vic", { login: false });
    const { login } = await import("./helpers");
    // Hold b's first poll until a has sent: the message is then newer than
    // b's server-rendered history, and only the cursor can bring it.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let polls = 0;
    await b.page.route("**/comet", async (route) => {
      polls += 1;
      if (polls === 1) await held;
      await route.continue();
    });
    await login(b.page, b.name);
    await expect.poll(() => polls).toBeGreaterThan(0);
    const text = `in the gap ${token()}`;
    await sendWithEnter(a.page, text);
    await expect(messageWithText(a.page, text)).toHaveCount(1);
    await expect(messageWithText(b.page, text)).toHaveCount(0);
    release();
    await expect(messageWithText(b.page, text)).toHaveCount(1);
    await fence(a, [b]);
    await expect(messageWithText(b.page, text)).toHaveCount(1);
    expect(unexpected(b.errors, POLL_401)).toEqual([]);
  });
});

test.describe("looks", () => {
  test("controls have names, and the keyboard moves through them in order", async ({ openUser }) => {
    const a = await openUser("aria");
    const b = await openUser("bert");
    const page = a.page;
    const box = page.getByRole("textbox", { name: "Message" });
    await expect(box).toBeVisible();
    await expect(page.getByRole("button", { name: "Send", exact: true })).toBeEnabled();
    await expect(page.getByRole("button", { name: "Log out" })).toBeVisible();
    await expect(page.getByRole("list", { name: "Messages" })).toBeVisible();
    await expect(page.getByRole("complementary", { name: /^Online \d+$/ })).toBeVisible();
    const person = page.getByRole("button", { name: `Send ${b.name} a private message` });
    await expect(person).toBeVisible();
    await box.focus();
    await page.keyboard.press("Tab");
    await expect(page.getByRole("button", { name: "Send", exact: true })).toBeFocused();
    // Choosing a person names the box for what it now does, and focuses it.
    await person.focus();
    await page.keyboard.press("Enter");
    await expect(page.getByRole("textbox", { name: "Private message" })).toBeFocused();
    await page.getByRole("button", { name: "Write to everyone instead" }).click();
    await expect(box).toBeVisible();
    expect(unexpected(a.errors)).toEqual([]);
  });

  test("the log opens at the newest message, follows new ones, and stays put while you read", async ({
    openUser,
  }) => {
    const a = await openUser("wes");
    const tag = token();
    for (let i = 0; i < 30; i++) await sendWithEnter(a.page, `backlog ${i} ${tag}`);
    const b = await openUser("xan");
    const log = b.page.locator(".log");
    const atBottom = () =>
      log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 4);
    await expect.poll(atBottom).toBe(true);
    expect(await log.evaluate((el) => el.scrollHeight > el.clientHeight)).toBe(true);

    const fresh = `fresh ${tag}`;
    await sendWithEnter(a.page, fresh);
    await expect(messageWithText(b.page, fresh)).toBeInViewport();
    await expect.poll(atBottom).toBe(true);

    // Reading older messages: a new one does not yank the view down.
    await log.evaluate((el) => (el.scrollTop = 0));
    const later = `later ${tag}`;
    await sendWithEnter(a.page, later);
    await expect(messageWithText(b.page, later)).toHaveCount(1);
    await b.page.waitForTimeout(300);
    expect(await log.evaluate((el) => el.scrollTop)).toBe(0);
    expect(unexpected(b.errors)).toEqual([]);
  });
});
