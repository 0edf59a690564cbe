/**
 * Several tabs of one browser share one long poll (comet/tabs.rs): one tab
 * polls and relays to the others over a BroadcastChannel; when it closes,
 * another takes over from the last message it had.
 */
import {
  expect,
  messageWithText,
  sendWithEnter,
  test,
  token,
  unexpected,
  waitConnected,
  waitHydrated,
} from "./helpers";
import type { Page } from "@playwright/test";

/** Counts each page's poll requests from now on. */
function countPolls(pages: Page[]): number[] {
  const counts = pages.map(() => 0);
  pages.forEach((page, i) =>
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/comet") counts[i] += 1;
    }),
  );
  return counts;
}

test("three tabs share one poll, and another tab takes over when the polling one closes", async ({
  openUser,
}) => {
  const me = await openUser("tabs");
  const other = await openUser("friend");
  const tabs = [me.page, await me.context.newPage(), await me.context.newPage()];
  for (const tab of tabs.slice(1)) {
    await tab.goto("/chat");
    await waitHydrated(tab);
  }
  for (const tab of tabs) await waitConnected(tab);

  // The server holds polls for 2 s in the tests: over 5 s the polling tab
  // polls again at least twice, and the others never.
  const counts = countPolls(tabs);
  await tabs[0].waitForTimeout(5_000);
  const polling = counts.map((n, i) => [n, i]).filter(([n]) => n > 0);
  expect(polling, `polls per tab: ${counts}`).toHaveLength(1);
  expect(polling[0][0]).toBeGreaterThanOrEqual(2);
  const leader = polling[0][1];

  const first = `to every tab ${token()}`;
  await sendWithEnter(other.page, first);
  for (const tab of tabs) await expect(messageWithText(tab, first)).toHaveCount(1);

  // The polling tab closes; a message sent right then still reaches the rest.
  await tabs[leader].close();
  const rest = tabs.filter((_, i) => i !== leader);
  const during = `during the hand-over ${token()}`;
  await sendWithEnter(other.page, during);
  for (const tab of rest) await expect(messageWithText(tab, during)).toHaveCount(1);

  const after = countPolls(rest);
  await rest[0].waitForTimeout(4_000);
  expect(after.filter((n) => n > 0), `polls per remaining tab: ${after}`).toHaveLength(1);
  const last = `after the hand-over ${token()}`;
  await sendWithEnter(rest[0], last);
  for (const tab of [...rest, other.page]) {
    await expect(messageWithText(tab, last)).toHaveCount(1);
    await expect(messageWithText(tab, during)).toHaveCount(1);
  }
  for (const tab of rest) await waitConnected(tab);
  expect(unexpected(me.errors)).toEqual([]);
});
