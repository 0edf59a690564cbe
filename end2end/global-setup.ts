import type { FullConfig } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";

/** How long to wait for the server: `cargo leptos end-to-end` may still be starting it. */
const TIMEOUT_MS = 180_000;
const INTERVAL_MS = 250;

/**
 * Polls `${baseURL}/healthz` until it answers 200, so that no test runs
 * against a server that is not listening yet.
 */
export default async function globalSetup(config: FullConfig): Promise<(() => Promise<void>) | void> {
  const baseURL =
    config.projects[0]?.use.baseURL ?? process.env.BASE_URL ?? "http://127.0.0.1:3100";
  await waitHealthy(baseURL);

  // With SECOND_NODE_ADDR set (scripts/test does, with COMET_REDIS_URL), a
  // second node of the same build serves the same chat from the same Redis,
  // for two-nodes.spec.ts. It is ours to stop: the teardown returned here.
  const second = process.env.SECOND_NODE_ADDR;
  if (!second) return;
  if (!process.env.COMET_REDIS_URL) {
    throw new Error("SECOND_NODE_ADDR needs COMET_REDIS_URL: two nodes only share a chat through Redis");
  }
  const root = path.join(__dirname, "..");
  const node: ChildProcess = spawn(path.join(root, "target", "debug", "comet-chat"), [], {
    cwd: root,
    env: {
      ...process.env,
      LEPTOS_SITE_ADDR: second,
      LEPTOS_OUTPUT_NAME: "comet-chat",
      LEPTOS_SITE_ROOT: "target/site",
      LEPTOS_SITE_PKG_DIR: "pkg",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  await waitHealthy(`http://${second}`);
  return async () => {
    node.kill("SIGTERM");
    await new Promise((resolve) => node.once("exit", resolve));
  };
}

async function waitHealthy(baseURL: string): Promise<void> {
  const url = new URL("/healthz", baseURL).toString();
  const deadline = Date.now() + TIMEOUT_MS;
  let last = "no answer yet";

  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      // Connection refused while the server starts: keep polling.
      last = err instanceof Error ? `${err.message}${causeOf(err)}` : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }

  throw new Error(
    `Comet Chat server did not become healthy: GET ${url} did not answer 200 ` +
      `within ${TIMEOUT_MS / 1000} s (last result: ${last}). ` +
      `Is it running? Set BASE_URL if it listens elsewhere.`,
  );
}

function causeOf(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : "";
}
