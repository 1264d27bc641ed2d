// Browser side of bench/web_chat.py: sign in, then ask the same question N times, each in a
// new conversation, timing (in the page, performance.now) from pressing Send to the first
// streamed delta shown and to the complete answer. Prints one JSON line.
// Usage: node chat_timing.mjs <base url> <config json: email, password, question, runs>
import { chromium } from "playwright-core";

const [base, configJson] = process.argv.slice(2);
const cfg = JSON.parse(configJson);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { runs: [] };
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(base + "/ui/");
  await page.getByLabel("E-mail").fill(cfg.email);
  await page.getByLabel("Password", { exact: true }).fill(cfg.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(cfg.email + " (").waitFor({ timeout: 20000 });
  for (let i = 0; i < cfg.runs + 1; i++) {  // the first run warms up and is not counted
    // the previous answer is shown before its stream closes; Send is enabled again after that
    await page.locator("#send:not([disabled])").waitFor({ timeout: 60000 });
    const r = await page.evaluate((question) => new Promise((resolve) => {
      document.getElementById("new-chat").click();
      document.getElementById("chat-input").value = question;
      const box = document.getElementById("messages");
      let first = null;
      const t0 = performance.now();
      const timer = setTimeout(() => { obs.disconnect(); resolve({ timeout: true }); }, 120000);
      const obs = new MutationObserver(() => {
        const reply = box.querySelector("li.msg.assistant");
        if (!reply) return;
        const progress = reply.querySelector("[data-testid=progress]");
        if (first === null && progress && progress.textContent.trim()) first = performance.now() - t0;
        if (!reply.classList.contains("streaming")) {
          obs.disconnect(); clearTimeout(timer);
          resolve({ first_ms: first ?? performance.now() - t0, done_ms: performance.now() - t0,
                    findings: reply.querySelectorAll(".finding").length,
                    failed: reply.classList.contains("failed"),
                    error: document.getElementById("alert").textContent });
        }
      });
      obs.observe(box, { childList: true, subtree: true, characterData: true, attributes: true });
      document.getElementById("send").click();
    }), cfg.question);
    if (i > 0) out.runs.push(r);
  }
  out.ok = true;
} catch (err) {
  out.ok = false;
  out.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
