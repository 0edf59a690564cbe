/**
 * Rooms: a room list beside the log, each room at its own address
 * (`/chat/{room}`), its own history and its own "who is here", unread
 * counts on the rooms you are not looking at, and one poll per browser for
 * all of a user's rooms.
 */
import {
  expect,
  messageWithText,
  online,
  sendWithEnter,
  test,
  token,
  unexpected,
  waitConnected,
  waitHydrated,
  type ChatUser,
} from "./helpers";
import type { Page } from "@playwright/test";
import path from "node:path";

const SCREENSHOTS = path.join(__dirname, "..", "screenshots");

/** A room name no other test (or earlier run) uses. */
function roomName(prefix: string): string {
  return `${prefix}-${token()}${token()}`.toLowerCase().slice(0, 32);
}

/** Opens a room through the room list's form and waits to be in it. */
async function openRoom(page: Page, name: string): Promise<void> {
  await page.getByTestId("new-room").fill(name);
  await page.getByTestId("create-room").click();
  await expect(page).toHaveURL(new RegExp(`/chat/${name}$`));
  await expect(page.getByTestId("room-title")).toHaveText(`# ${name}`);
}

/** The room list's entry for `name`. */
function roomEntry(page: Page, name: string) {
  return page.locator(`[data-testid="room"][data-room="${name}"]`);
}

/** Clicks `name` in the room list and waits until it is shown. */
async function goToRoom(page: Page, name: string): Promise<void> {
  await roomEntry(page, name).locator("a").click();
  await expect(page.getByTestId("room-title")).toHaveText(`# ${name}`);
}

async function noErrors(users: ChatUser[]): Promise<void> {
  for (const user of users) expect(unexpected(user.errors)).toEqual([]);
}

test("three people in two rooms: each room's messages stay in it", async ({ openUser }) => {
  const ann = await openUser("ann");
  const bob = await openUser("bob");
  const cid = await openUser("cid");
  const room = roomName("rust");
  await openRoom(ann.page, room);
  // bob opens the room's address; cid stays in the chat room.
  await bob.page.goto(`/chat/${room}`);
  await waitHydrated(bob.page);
  await waitConnected(bob.page);
  await expect(bob.page.getByTestId("room-title")).toHaveText(`# ${room}`);
  await expect(online(bob.page, ann.name)).toBeVisible();
  await expect(online(bob.page, cid.name)).toHaveCount(0);
  await expect(online(ann.page, bob.name)).toBeVisible();

  const inRoom = `borrowck ${token()}`;
  await sendWithEnter(ann.page, inRoom);
  await expect(messageWithText(bob.page, inRoom)).toHaveCount(1);
  const inChat = `lobby ${token()}`;
  await sendWithEnter(cid.page, inChat);
  // The chat room's message shows where the chat room is shown, not in
  // the other room, and the other room's not in the chat room.
  await expect(roomEntry(ann.page, "chat").getByTestId("unread")).toHaveText("1");
  await expect(messageWithText(ann.page, inChat)).toHaveCount(0);
  await expect(messageWithText(bob.page, inChat)).toHaveCount(0);
  await expect(messageWithText(cid.page, inRoom)).toHaveCount(0);
  // cid sees the room listed among the others, not joined.
  await expect(roomEntry(cid.page, room)).toHaveAttribute("data-joined", "false");
  await goToRoom(ann.page, "chat");
  await expect(messageWithText(ann.page, inChat)).toHaveCount(1);
  await expect(messageWithText(ann.page, inRoom)).toHaveCount(0);
  await noErrors([ann, bob, cid]);
});

test("unread counts rise on rooms not shown and clear when the room is opened", async ({ openUser }) => {
  const ann = await openUser("ann");
  const bob = await openUser("bob");
  const room = roomName("ops");
  await openRoom(ann.page, room);
  await bob.page.goto(`/chat/${room}`);
  await waitHydrated(bob.page);
  await waitConnected(bob.page);
  await goToRoom(bob.page, "chat");
  await expect(roomEntry(bob.page, room).getByTestId("unread")).toHaveCount(0);

  const texts = [`one ${token()}`, `two ${token()}`];
  await sendWithEnter(ann.page, texts[0]);
  await expect(roomEntry(bob.page, room).getByTestId("unread")).toHaveText("1");
  await sendWithEnter(ann.page, texts[1]);
  await expect(roomEntry(bob.page, room).getByTestId("unread")).toHaveText("2");

  await bob.page.screenshot({ path: path.join(SCREENSHOTS, "rooms-unread.png"), animations: "disabled" });
  await goToRoom(bob.page, room);
  await expect(roomEntry(bob.page, room).getByTestId("unread")).toHaveCount(0);
  for (const text of texts) await expect(messageWithText(bob.page, text)).toHaveCount(1);
  await bob.page.screenshot({ path: path.join(SCREENSHOTS, "rooms.png"), animations: "disabled" });
  // Live again in the room shown, once.
  const live = `three ${token()}`;
  await sendWithEnter(ann.page, live);
  await expect(messageWithText(bob.page, live)).toHaveCount(1);
  await expect(roomEntry(bob.page, room).getByTestId("unread")).toHaveCount(0);
  await noErrors([ann, bob]);
});

test("a room's address opened in a new tab lands in that room", async ({ openUser }) => {
  const ann = await openUser("ann");
  const room = roomName("tab");
  await openRoom(ann.page, room);
  const said = `remember ${token()}`;
  await sendWithEnter(ann.page, said);
  const tab = await ann.context.newPage();
  await tab.goto(`/chat/${room}`);
  await waitHydrated(tab);
  await waitConnected(tab);
  await expect(tab.getByTestId("room-title")).toHaveText(`# ${room}`);
  await expect(roomEntry(tab, room).locator("a")).toHaveAttribute("aria-current", "page");
  await expect(messageWithText(tab, said)).toHaveCount(1);
  // Live in the new tab too.
  const next = `next ${token()}`;
  await sendWithEnter(ann.page, next);
  await expect(messageWithText(tab, next)).toHaveCount(1);
  // A room that is not there says so.
  await tab.goto("/chat/no-such-room-here");
  await expect(tab.getByTestId("no-room")).toContainText("There is no room by that name.");
});

test("leaving a room takes it off your rooms; the last one out closes it", async ({ openUser }) => {
  const ann = await openUser("ann");
  const bob = await openUser("bob");
  const room = roomName("bye");
  await openRoom(ann.page, room);
  await expect(roomEntry(bob.page, room)).toHaveAttribute("data-joined", "false");
  await ann.page.getByTestId("leave-room").click();
  await expect(ann.page).toHaveURL(/\/chat$/);
  await expect(ann.page.getByTestId("room-title")).toHaveText("# chat");
  // Nobody left in it: gone from every list.
  await expect(roomEntry(ann.page, room)).toHaveCount(0);
  await expect(roomEntry(bob.page, room)).toHaveCount(0);
  await noErrors([ann, bob]);
});

test("ten rooms and three tabs never reach the browser's six connections", async ({ openUser }) => {
  const ann = await openUser("ann");
  const bob = await openUser("bob");
  const rooms = Array.from({ length: 10 }, (_, i) => roomName(`r${i}`));
  for (const room of rooms) {
    const res = await ann.page.request.post("/api/create_room", {
      form: { name: room },
      maxRedirects: 0,
    });
    expect(res.status(), await res.text()).toBeLessThan(400);
    const joined = await bob.page.request.post("/api/join_room", { form: { room } });
    expect(joined.status()).toBe(200);
  }
  // Requests in flight from ann's browser: polls at most over the whole
  // test; all requests at most once the tabs are open (page loads fetch
  // their files in parallel, as any site's do).
  let inFlight = 0;
  let most = 0;
  let counting = false;
  let pollsInFlight = 0;
  let mostPolls = 0;
  const isPoll = (url: string) => new URL(url).pathname === "/comet";
  ann.context.on("request", (request) => {
    inFlight += 1;
    if (counting) most = Math.max(most, inFlight);
    if (isPoll(request.url())) mostPolls = Math.max(mostPolls, ++pollsInFlight);
  });
  const done = (request: { url(): string }) => {
    inFlight -= 1;
    if (isPoll(request.url())) pollsInFlight -= 1;
  };
  ann.context.on("requestfinished", done);
  ann.context.on("requestfailed", done);

  const tabs = [ann.page, await ann.context.newPage(), await ann.context.newPage()];
  for (const [i, tab] of tabs.entries()) {
    await tab.goto(`/chat/${rooms[i]}`);
    await waitHydrated(tab);
    await waitConnected(tab);
  }
  counting = true;
  most = inFlight;
  // bob writes in every room; each tab shows its room's message live and
  // counts the others as unread.
  const said = rooms.map((room) => `in ${room} ${token()}`);
  for (const [i, room] of rooms.entries()) {
    const res = await bob.page.request.post("/api/send_message", { form: { text: said[i], room } });
    expect(res.status()).toBe(200);
  }
  for (const [i, tab] of tabs.entries()) {
    await expect(messageWithText(tab, said[i])).toHaveCount(1);
    await expect(roomEntry(tab, rooms[(i + 1) % 3]).getByTestId("unread")).toHaveText("1");
    await expect(roomEntry(tab, rooms[9]).getByTestId("unread")).toHaveText("1");
  }
  // And every tab can still send at once.
  for (const tab of tabs) {
    const text = `from a tab ${token()}`;
    await sendWithEnter(tab, text);
    await expect(messageWithText(tab, text)).toHaveCount(1);
  }
  // One held poll for the three tabs' ten rooms; two for the instant a
  // tab's arrival changes the held poll (the old one is aborted as the new
  // one starts).
  expect(mostPolls, "polls in flight at once").toBeLessThanOrEqual(2);
  expect(most, "requests in flight at once").toBeLessThan(6);
  await noErrors([ann, bob]);
});
