import { defineConfig } from "@playwright/test";

/**
 * Browser tests for Comet Chat.
 *
 * `cargo leptos end-to-end` builds and starts the server, then runs
 * `npx playwright test` in this folder without waiting for the port to open;
 * global-setup.ts does that waiting (GET /healthz).
 *
 * The server is expected to run with a 2 s long-poll timeout and a 4 s idle
 * timeout (session.spec.ts relies on the latter).
 */
const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:3100";

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
  use: {
    baseURL: BASE_URL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        browserName: "chromium",
        // Debian's Chromium: no Playwright browser download is possible here.
        launchOptions: {
          executablePath: "/usr/bin/chromium",
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
