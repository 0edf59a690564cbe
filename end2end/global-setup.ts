import type { FullConfig } from "@playwright/test";
import { startNode, stopNode, waitHealthy } from "./nodes";

/** How long to wait for the server: `cargo leptos end-to-end` may still be starting it. */
const TIMEOUT_MS = 180_000;

/**
 * Polls `${baseURL}/healthz` until it answers 200, so that no test runs
 * against a server that is not listening yet.
 */
export default async function globalSetup(config: FullConfig): Promise<(() => Promise<void>) | void> {
  const baseURL =
    config.projects[0]?.use.baseURL ?? process.env.BASE_URL ?? "http://127.0.0.1:3100";
  await waitHealthy(baseURL, TIMEOUT_MS);

  // With SECOND_NODE_ADDR set (scripts/test does, with COMET_REDIS_URL), a
  // second node of the same build serves the same chat from the same Redis,
  // for two-nodes.spec.ts. It is ours to stop: the teardown returned here.
  const second = process.env.SECOND_NODE_ADDR;
  if (!second) return;
  if (!process.env.COMET_REDIS_URL) {
    throw new Error("SECOND_NODE_ADDR needs COMET_REDIS_URL: two nodes only share a chat through Redis");
  }
  const node = await startNode(second, { timeoutMs: TIMEOUT_MS });
  return () => stopNode(node, "SIGTERM");
}
