import type { ChildProcess } from "node:child_process";
import type { FullConfig } from "@playwright/test";
import { startNode, stopNode, waitHealthy } from "./nodes";
import { serverSettings } from "./suite-server";

/** How long to wait for the server: `cargo leptos end-to-end` may still be starting it. */
const TIMEOUT_MS = 180_000;

/**
 * Starts the suite's own server when playwright.config.ts decided so (no
 * BASE_URL given: suite-server.ts), with server.env's settings; then polls
 * `${baseURL}/healthz` until it answers 200, so that no test runs against a
 * server that is not listening yet. Returns the teardown that stops what
 * it started.
 */
export default async function globalSetup(config: FullConfig): Promise<(() => Promise<void>) | void> {
  const started: ChildProcess[] = [];
  const own = process.env.E2E_OWN_SERVER;
  if (own) {
    // The settings go into this process's environment too: restart.spec.ts
    // and the second node start nodes with it.
    Object.assign(process.env, serverSettings(), { RUST_LOG: process.env.RUST_LOG ?? "warn" });
    started.push(await startNode(own, { timeoutMs: TIMEOUT_MS }));
  }
  const baseURL = config.projects[0]?.use.baseURL ?? process.env.BASE_URL;
  if (!baseURL) throw new Error("no BASE_URL: playwright.config.ts sets one");
  await waitHealthy(baseURL, TIMEOUT_MS);
  const teardown = async () => {
    for (const node of started) await stopNode(node, "SIGTERM");
  };

  // With SECOND_NODE_ADDR set (scripts/test does, with COMET_REDIS_URL), a
  // second node of the same build serves the same chat from the same Redis,
  // for two-nodes.spec.ts. It is ours to stop: the teardown returned here.
  const second = process.env.SECOND_NODE_ADDR;
  if (!second) return teardown;
  if (!process.env.COMET_REDIS_URL) {
    await teardown();
    throw new Error("SECOND_NODE_ADDR needs COMET_REDIS_URL: two nodes only share a chat through Redis");
  }
  started.push(await startNode(second, { timeoutMs: TIMEOUT_MS }));
  return teardown;
}
