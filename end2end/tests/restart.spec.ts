/**
 * Connection status across a server restart. The test runs its own server
 * process (the same build) on a free port, so it can kill it and start
 * it again. With COMET_REDIS_URL set (scripts/test's second run) that node
 * shares the chat with the main server through Redis: sessions and messages
 * survive the restart, so the page reconnects and loses nothing. In-process,
 * the restarted server has forgotten every session, and the page must say so
 * and offer the way back to the login page.
 */
import * as net from "node:net";
import {
  expect,
  expectPath,
  login,
  messageWithText,
  openContext,
  POLL_401,
  sendWithEnter,
  test,
  token,
  uniqueName,
  unexpected,
  waitConnected,
} from "./helpers";
import { startNode, stopNode } from "../nodes";

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What Chromium logs while the server is away, and the 401 after an in-process restart. */
const WHILE_DOWN = [
  /ERR_CONNECTION_REFUSED/,
  /ERR_EMPTY_RESPONSE/,
  /ERR_CONNECTION_RESET/,
  /ERR_INCOMPLETE_CHUNKED_ENCODING/,
  POLL_401,
];

test("a server restart shows reconnecting, then connected (Redis) or the way back to login (in-process)", async ({
  browser,
  openUser,
}) => {
  const redis = !!process.env.COMET_REDIS_URL;
  const addr = `127.0.0.1:${await freePort()}`;
  let node = await startNode(addr, { quiet: true });
  const user = await openContext(browser, `http://${addr}`);
  try {
    await login(user.page, uniqueName("phoenix"));
    await waitConnected(user.page);
    const status = user.page.getByTestId("status");

    await stopNode(node, "SIGKILL");
    await expect(status).toHaveAttribute("data-status", "reconnecting");
    await expect(status).toHaveText("Reconnecting…");

    // Someone on the main server writes while this node is down.
    const witness = await openUser("witness");
    const text = `while you were away ${token()}`;
    await sendWithEnter(witness.page, text);

    node = await startNode(addr, { quiet: true });
    if (redis) {
      await expect(status).toHaveAttribute("data-status", "connected", { timeout: 20_000 });
      await expect(messageWithText(user.page, text)).toHaveCount(1);
      const after = `after the restart ${token()}`;
      await sendWithEnter(user.page, after);
      await expect(messageWithText(witness.page, after)).toHaveCount(1);
    } else {
      await expect(status).toHaveAttribute("data-status", "ended", { timeout: 20_000 });
      const ended = user.page.getByTestId("session-ended");
      await expect(ended).toContainText("Your session has ended");
      await ended.getByRole("link", { name: "Log in again" }).click();
      await expectPath(user.page, "/");
    }
    expect(unexpected(user.errors, ...WHILE_DOWN)).toEqual([]);
  } finally {
    await user.context.close();
    await stopNode(node, "SIGTERM");
  }
});

test("a dropped network shows reconnecting, then the page catches up with what it missed", async ({
  openUser,
}) => {
  const a = await openUser("offline");
  const b = await openUser("online");
  const status = a.page.getByTestId("status");
  await a.context.setOffline(true);
  await expect(status).toHaveAttribute("data-status", "reconnecting", { timeout: 15_000 });
  const missed = `sent while you were offline ${token()}`;
  await sendWithEnter(b.page, missed);
  await a.context.setOffline(false);
  await expect(status).toHaveAttribute("data-status", "connected", { timeout: 15_000 });
  await expect(messageWithText(a.page, missed)).toHaveCount(1);
  expect(unexpected(a.errors, ...WHILE_DOWN, /ERR_INTERNET_DISCONNECTED/)).toEqual([]);
});

test("503 answers make the page back off as told by Retry-After, then recover", async ({ openUser }) => {
  const a = await openUser("patient");
  const b = await openUser("sender");
  const status = a.page.getByTestId("status");
  const refusedAt: number[] = [];
  await a.page.route("**/comet", async (route) => {
    if (refusedAt.length < 3) {
      refusedAt.push(Date.now());
      await route.fulfill({
        status: 503,
        headers: { "content-type": "application/json", "retry-after": "1" },
        body: JSON.stringify({ error: "unavailable", message: "down for a moment" }),
      });
    } else {
      await route.continue();
    }
  });
  // The poll in flight ends within the 2 s poll timeout; the next ones are refused.
  await expect(status).toHaveAttribute("data-status", "reconnecting", { timeout: 10_000 });
  await expect(status).toHaveAttribute("data-status", "connected", { timeout: 15_000 });
  expect(refusedAt).toHaveLength(3);
  for (let i = 1; i < refusedAt.length; i++) {
    expect(refusedAt[i] - refusedAt[i - 1], `retry ${i} waited for Retry-After`).toBeGreaterThanOrEqual(950);
  }
  const text = `after the outage ${token()}`;
  await sendWithEnter(b.page, text);
  await expect(messageWithText(a.page, text)).toHaveCount(1);
  expect(unexpected(a.errors, /status of 503/)).toEqual([]);
});
