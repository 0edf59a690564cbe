import * as path from "node:path";
import {
  chatMessages,
  collectConsoleErrors,
  disableBrowserValidation,
  expect,
  POLL_401,
  REREAD_401,
  gotoLogin,
  loginPreferring,
  logout,
  messageWithText,
  messagesFrom,
  notice,
  sendWithButton,
  sendWithEnter,
  test,
  refused,
  token,
  unexpected,
  waitConnected,
  type ChatUser,
} from "./helpers";
import type { Locator, Page } from "@playwright/test";

const SCREENSHOTS = path.join(__dirname, "..", "screenshots");

/** The texts of this test's chat messages (those containing `tag`), in page order. */
function textsTagged(page: Page, tag: string): Promise<string[]> {
  return chatMessages(page)
    .filter({ hasText: tag })
    .locator(".text")
    .allTextContents()
    .then((texts) => texts.map((t) => t.trim()));
}

// Declared first so that, on a fresh server, the README pictures show no
// leftovers from the other tests (chat.spec.ts is also the first file).
test.describe("screenshots for the README", () => {
  const viewport = { width: 1024, height: 720 };

  test("login page", async ({ page }) => {
    const errors = collectConsoleErrors(page);
    await page.setViewportSize(viewport);
    await gotoLogin(page);
    await page.screenshot({ path: path.join(SCREENSHOTS, "login.png"), fullPage: true, animations: "disabled" });
    expect(errors).toEqual([]);
  });

  test("a live two-person chat", async ({ openUser }) => {
    const contextOptions = { viewport };
    // Natural names read better in the README; if one is taken on this
    // server (another run still logged in), fall back to a unique one.
    const ada = await openUser("Ada", { login: false, contextOptions });
    const grace = await openUser("Grace", { login: false, contextOptions });
    ada.name = await loginPreferring(ada.page, "Ada");
    await waitConnected(ada.page);
    grace.name = await loginPreferring(grace.page, "Grace");
    await waitConnected(grace.page);
    await expect(notice(ada.page, "join", grace.name)).toBeVisible();

    const conversation: [ChatUser, string][] = [
      [ada, "Morning Grace! Did the long-polling branch get merged?"],
      [grace, "It did, last night. Messages now arrive the moment the server answers the poll."],
      [ada, "Nice. And if nothing happens, the poll just times out and starts again?"],
      [grace, "Exactly, every couple of seconds. No WebSockets needed."],
      [ada, "And this is two separate browsers talking to each other right now."],
      [grace, "Ship it!"],
    ];
    for (const [from, text] of conversation) {
      const to = from === ada ? grace : ada;
      await sendWithEnter(from.page, text);
      await expect(messageWithText(to.page, text)).toHaveCount(1);
    }
    await expect(messageWithText(ada.page, conversation.at(-1)![1])).toBeVisible();

    await ada.page.screenshot({
      path: path.join(SCREENSHOTS, "chat-two-users.png"),
      fullPage: true,
      animations: "disabled",
    });

    // Free the natural names right away for the next run.
    for (const user of [grace, ada]) await logout(user.page);
    expect(unexpected(ada.errors, POLL_401, REREAD_401)).toEqual([]);
    expect(unexpected(grace.errors, POLL_401, REREAD_401)).toEqual([]);
  });
  test("desktop and phone widths, light and dark, one colour per name", async ({ openUser }) => {
    const ada = await openUser("Ada", { login: false, contextOptions: { viewport: { width: 1100, height: 720 } } });
    const grace = await openUser("Grace", {
      login: false,
      contextOptions: { viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true, colorScheme: "dark" },
    });
    ada.name = await loginPreferring(ada.page, "Ada");
    await waitConnected(ada.page);
    grace.name = await loginPreferring(grace.page, "Grace");
    await waitConnected(grace.page);
    const online = (page: Page, name: string) =>
      page.locator(`[data-testid="online-user"][data-name="${name}"]`);
    await expect(online(ada.page, grace.name)).toBeVisible();

    await sendWithEnter(grace.page, "On my phone today, the layout holds up nicely.");
    await expect(messageWithText(ada.page, "layout holds up")).toHaveCount(1);
    await online(ada.page, grace.name).getByRole("button").click();
    await sendWithEnter(ada.page, "Psst, this one is just for you.");
    await expect(grace.page.locator('[data-testid="message"][data-kind="private"]')).toHaveCount(1);

    // One name, one colour: in the log and in the list alike.
    const colour = (l: Locator) => l.evaluate((el) => getComputedStyle(el).color);
    const fromGrace = messageWithText(ada.page, "layout holds up").locator(".from");
    expect(await colour(fromGrace)).toBe(await colour(online(ada.page, grace.name).getByRole("button")));
    // Dark mode follows the system: Grace's page is dark, Ada's light.
    const lightness = (page: Page) =>
      page.locator(".chat").evaluate((el) => {
        const [r, g, b] = getComputedStyle(el).backgroundColor.match(/\d+/g)!.map(Number);
        return (r + g + b) / 3;
      });
    expect(await lightness(grace.page)).toBeLessThan(80);
    expect(await lightness(ada.page)).toBeGreaterThan(200);
    // Nothing overflows the phone's width, and the message box is on screen.
    const overflow = await grace.page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await expect(grace.page.getByTestId("composer")).toBeInViewport();

    await ada.page.screenshot({ path: path.join(SCREENSHOTS, "chat-desktop.png"), animations: "disabled" });
    await grace.page.screenshot({ path: path.join(SCREENSHOTS, "chat-phone-dark.png"), animations: "disabled" });
    for (const user of [grace, ada]) await logout(user.page);
    expect(unexpected(ada.errors, POLL_401, REREAD_401)).toEqual([]);
    expect(unexpected(grace.errors, POLL_401, REREAD_401)).toEqual([]);
  });
});

test.describe("chat", () => {
  test("two users chat both ways, live", async ({ openUser }) => {
    const a = await openUser("alice");
    const b = await openUser("bob");
    await expect(notice(a.page, "join", b.name)).toBeVisible();

    // A -> B, sent with Enter.
    const hello = `Hello ${b.name}, this is ${a.name} (${token()})`;
    await sendWithEnter(a.page, hello);

    const atB = messageWithText(b.page, hello);
    await expect(atB).toHaveCount(1);
    await expect(atB).toHaveAttribute("data-mine", "false");
    await expect(atB.locator(".from")).toHaveText(a.name);
    await expect(atB.locator(".text")).toHaveText(hello);
    await expect(atB.locator("time")).toHaveCount(1);

    const atA = messageWithText(a.page, hello);
    await expect(atA).toHaveCount(1);
    await expect(atA).toHaveAttribute("data-mine", "true");
    await expect(atA.locator(".from")).toHaveText(a.name);

    // B -> A, sent with the Send button.
    const reply = `Hi ${a.name}, ${b.name} here (${token()})`;
    await sendWithButton(b.page, reply);

    const replyAtA = messageWithText(a.page, reply);
    await expect(replyAtA).toHaveCount(1);
    await expect(replyAtA).toHaveAttribute("data-mine", "false");
    await expect(replyAtA.locator(".from")).toHaveText(b.name);
    const replyAtB = messageWithText(b.page, reply);
    await expect(replyAtB).toHaveCount(1);
    await expect(replyAtB).toHaveAttribute("data-mine", "true");

    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  test("rapid messages appear in the same order in both browsers", async ({ openUser }) => {
    const a = await openUser("rapid-a");
    const b = await openUser("rapid-b");
    const tag = token();
    const sent = [1, 2, 3, 4, 5].map((i) => `message ${i} of 5 [${tag}]`);

    // Back to back with Enter; each waits only for the composer to clear,
    // so that typing the next one cannot race with clearing the last one.
    for (const text of sent) await sendWithEnter(a.page, text);

    // Each browser gets all five, in one order that both agree on (the one
    // they were sent in, as each send finished before the next began).
    await expect.poll(() => textsTagged(b.page, tag)).toHaveLength(sent.length);
    await expect.poll(() => textsTagged(a.page, tag)).toHaveLength(sent.length);
    const atA = await textsTagged(a.page, tag);
    const atB = await textsTagged(b.page, tag);
    expect(atB).toEqual(atA);
    expect(atA).toEqual(sent);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  test("Shift+Enter inserts a newline instead of sending", async ({ openUser }) => {
    const a = await openUser("multi-a");
    const b = await openUser("multi-b");
    const tag = token();
    const composer = a.page.getByTestId("composer");
    await expect(composer).toHaveAttribute("aria-label", "Message");

    await composer.click();
    await composer.pressSequentially(`first line ${tag}`);
    await composer.press("Shift+Enter");
    await composer.pressSequentially("second line");
    await expect(composer).toHaveValue(`first line ${tag}\nsecond line`);

    // Nothing was sent: give a wrongly sent message time to come back first.
    await a.page.waitForTimeout(1_000);
    await expect(messageWithText(a.page, tag)).toHaveCount(0);

    await composer.press("Enter");
    await expect(composer).toHaveValue("");
    const atB = messageWithText(b.page, tag);
    await expect(atB).toHaveCount(1);
    // One message holding both lines (however the newline is rendered).
    await expect(atB.locator(".text")).toHaveText(new RegExp(`^first line ${tag}\\s*second line$`));
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  test("HTML in a message is shown as text, never run", async ({ openUser }) => {
    const a = await openUser("xss-a");
    const b = await openUser("xss-b");
    const payload = "<script>window.__pwned=1</script><b>bold</b>";
    await sendWithEnter(a.page, payload);

    for (const page of [b.page, a.page]) {
      // The sender's name is unique, so this is the one message.
      const msg = messagesFrom(page, a.name);
      await expect(msg).toHaveCount(1);
      expect(await msg.locator(".text").innerText()).toBe(payload);
      await expect(page.getByTestId("messages").locator("b, script")).toHaveCount(0);
      expect(await page.evaluate(() => (window as { __pwned?: unknown }).__pwned)).toBeUndefined();
    }
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  test("an empty or too long message shows a send error", async ({ openUser }) => {
    const a = await openUser("senderr");
    const composer = a.page.getByTestId("composer");
    // Test the app's own limits, even if the textarea has `required`/`maxlength`.
    await disableBrowserValidation(composer);
    const sendError = a.page.getByTestId("send-error");
    await expect(sendError).toHaveCount(0);

    await composer.fill("");
    await a.page.getByTestId("send").click();
    await expect(sendError).toBeVisible();
    await expect(sendError).toHaveAttribute("role", "alert");
    await expect(sendError).not.toHaveText("");

    await composer.fill("a".repeat(2001));
    await a.page.getByTestId("send").click();
    await expect(sendError).toContainText(/too long/i);

    // Neither attempt posted anything.
    await a.page.waitForTimeout(500);
    await expect(messagesFrom(a.page, a.name)).toHaveCount(0);
    // Only the two refusals themselves (400) may show in the console.
    expect(unexpected(a.errors, refused("send_message", 400))).toEqual([]);
  });
});
