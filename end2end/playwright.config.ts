import { defineConfig } from "@playwright/test";
import { chromium, precompressed, suiteServer } from "./suite-server";
import { isReleaseBuild } from "./nodes";

/**
 * Browser tests for Comet Chat.
 *
 * `cargo leptos end-to-end` builds and starts the server, then runs
 * `npx playwright test` in this folder without waiting for the port to open;
 * global-setup.ts does that waiting (GET /healthz), or starts the suite's
 * own server when BASE_URL is not set (suite-server.ts says which).
 *
 * The server is expected to run with the settings in server.env (a 2 s
 * long-poll timeout, a 4 s idle timeout, no login limit...).
 */
const server = suiteServer();
// Workers and global-setup.ts read the same decision.
process.env.BASE_URL = server.baseURL;
if (server.own) process.env.E2E_OWN_SERVER = server.ownAddr;
// page-weight.spec.ts expects `Vary: Accept-Encoding` only of such a build.
process.env.E2E_PRECOMPRESSED = precompressed() ? "1" : "0";
// The page-weight budget (@release) holds for the release build only: a
// suite that serves a debug build itself leaves those tests out, and says so.
const debugOwn = server.own && !isReleaseBuild();
if (debugOwn) console.log("serving a debug build: @release tests left out (run a release build for them)");
const executablePath = chromium();

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  // All tests talk to one server whose chat users are global: run them one at
  // a time (each test still uses its own unique user names).
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: "list",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  grepInvert: debugOwn ? /@release/ : undefined,
  use: {
    baseURL: server.baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        browserName: "chromium",
        // A system Chromium (CHROMIUM, or found): no Playwright browser
        // download is possible here.
        launchOptions: {
          executablePath,
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
          ],
        },
      },
    },
  ],
});
