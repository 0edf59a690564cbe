/**
 * Two browsers on two server nodes that share one chat through Redis (no
 * sticky sessions). Runs when scripts/test starts the second node
 * (SECOND_NODE_ADDR, with COMET_REDIS_URL); without it there is nothing to
 * test, and the test says so as skipped.
 */
import {
  expect,
  login,
  messageWithText,
  notice,
  openContext,
  sendWithEnter,
  test,
  token,
  uniqueName,
  waitConnected,
} from "./helpers";

const second = process.env.SECOND_NODE_ADDR;

test("two browsers on two nodes chat live through Redis", async ({ browser, baseURL }) => {
  test.skip(!second, "needs SECOND_NODE_ADDR and COMET_REDIS_URL (scripts/test sets both)");
  const one = await openContext(browser, baseURL);
  const two = await openContext(browser, `http://${second}`);
  try {
    const a = uniqueName("node1");
    const b = uniqueName("node2");
    await login(one.page, a);
    await waitConnected(one.page);
    await login(two.page, b);
    await waitConnected(two.page);
    expect(new URL(one.page.url()).port).not.toBe(new URL(two.page.url()).port);

    // Presence crosses nodes: the first browser sees the second join.
    await expect(notice(one.page, "join", b)).toBeVisible();

    const hello = `hello from node one (${token()})`;
    await sendWithEnter(one.page, hello);
    await expect(messageWithText(two.page, hello)).toHaveCount(1);
    await expect(messageWithText(two.page, hello).locator(".from")).toHaveText(a);

    const reply = `and back from node two (${token()})`;
    await sendWithEnter(two.page, reply);
    await expect(messageWithText(one.page, reply)).toHaveCount(1);
    await expect(messageWithText(one.page, reply)).toHaveAttribute("data-mine", "false");

    expect(one.errors).toEqual([]);
    expect(two.errors).toEqual([]);
  } finally {
    await one.context.close();
    await two.context.close();
  }
});
